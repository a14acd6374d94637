//! The `shardlog` broker binary.

fn main() -> std::process::ExitCode {
    shardlog::boot::main()
}
