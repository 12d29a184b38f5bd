//! The `gatehouse-local` binary as `make dev` and `make demo` run it, against
//! the test moto (`make test` starts it and sets GATEHOUSE_TEST_AWS_ENDPOINT).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5056".to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn command(args: &[&str], run: &str, addr: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse-local"));
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("GATEHOUSE_ADDR", addr)
        .env("TABLE_NAME", format!("gh-bin-{run}"))
        .env("EMAIL_QUEUE_NAME", format!("gh-bin-{run}-email"))
        .env("EMAIL_DLQ_NAME", format!("gh-bin-{run}-dlq"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    cmd
}

fn wait_exit(child: &mut Child, deadline: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < deadline,
            "process did not exit within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn dev_serves_routes_and_stops_on_sigterm() {
    let run = hex::encode(rand::random::<[u8; 4]>());
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = command(&["dev"], &run, &addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let start = Instant::now();
    while TcpStream::connect(&addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "dev exited early");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "dev did not open {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (unknown, unsigned) = runtime.block_on(async {
        let client = reqwest::Client::new();
        let unknown = client
            .get(format!("http://{addr}/nope"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let unsigned = client
            .post(format!("http://{addr}/webhooks/kajabi"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        (unknown, unsigned)
    });
    assert_eq!(unknown, 404);
    assert_eq!(unsigned, 401, "the webhook route is served");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait_exit(&mut child, Duration::from_secs(15));
    assert!(status.success(), "dev exits cleanly on SIGTERM: {status:?}");
    assert!(TcpStream::connect(&addr).is_err(), "the port is closed");
}

#[test]
fn demo_passes_its_own_checks() {
    let run = hex::encode(rand::random::<[u8; 4]>());
    let output = command(&["demo"], &run, "127.0.0.1:0").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("All demo checks passed."));
    assert!(stdout.contains("status=processed"));
    assert!(stdout.contains("\"status\":\"duplicate\""));
}

#[test]
fn unknown_command_prints_usage() {
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse-local"))
        .arg("bogus")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}

/// `make dev`, `make demo` and `make invoke` use `cargo run -p gatehouse-local`.
/// The crate also has the bench binary, so cargo only knows which one to run
/// through `default-run` (cargo's rule, checked here without a second build).
#[test]
fn cargo_run_resolves_the_local_stack_binary() {
    let root = gatehouse_local::env::workspace_root();
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    assert!(makefile.contains("cargo run -q -p gatehouse-local -- demo"));
    let extra_bins = std::fs::read_dir(root.join("infra/local/src/bin"))
        .map(|d| d.count())
        .unwrap_or(0);
    let manifest = std::fs::read_to_string(root.join("infra/local/Cargo.toml")).unwrap();
    if extra_bins > 0 {
        assert!(
            manifest.contains("default-run = \"gatehouse-local\""),
            "gatehouse-local has {extra_bins} extra binaries and no default-run"
        );
    }
}
