//! The `sluice` binary: the command line lives in [`sluice::cli`].

use std::process::ExitCode;

/// Decoding and encoding allocate many small values; mimalloc halves what the system allocator
/// costs there (measured in bench/convert.py).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    sluice::cli::main()
}
