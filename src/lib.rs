//! This root package only holds the black-box tests in `tests/`; the code lives in the member crates.
