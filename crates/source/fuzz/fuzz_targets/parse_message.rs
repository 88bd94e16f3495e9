//! Arbitrary bytes as an XLogData payload: `parse_message` must return, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use walproof_source::pgoutput::parse_message;

fuzz_target!(|data: &[u8]| {
    // Formatting the result walks every borrowed string and value, and every error's Display.
    match parse_message(data) {
        Ok(message) => drop(format!("{message:?}")),
        Err(err) => drop(err.to_string()),
    }
});
