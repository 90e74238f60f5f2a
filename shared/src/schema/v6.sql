-- Schema version 6: who stopped an agent on request, so that every reader can say
-- "stopped by alice (ctl)" rather than show the signal that carried the stop out.
ALTER TABLE agents ADD COLUMN stopped_by TEXT;  -- `alice (ctl)`; NULL unless an operator stopped it
