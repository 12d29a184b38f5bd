//! `gatehouse-admin`: see `gatehouse_admin::commands::USAGE`.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = gatehouse_admin::run(&args).await;
    if !outcome.stdout.is_empty() {
        println!("{}", outcome.stdout);
    }
    if !outcome.stderr.is_empty() {
        eprintln!("{}", outcome.stderr);
    }
    ExitCode::from(outcome.code)
}
