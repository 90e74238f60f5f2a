//! Reading what agents write: bounded lines off a pipe ([`lines`]), shared by the notify pipe
//! and output capture, and the capture of stdout and stderr into the log table ([`output`]).

pub mod lines;
pub mod output;
pub mod ready_line;
