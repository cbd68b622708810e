//! Ctrl-C and SIGTERM in a real process. The test binary runs itself again as the child (with
//! `LATENT_CORE_SIGNAL_CHILD` set, only [`signal_child_process`]): the child installs
//! `StopFlag::ctrl_c`, says `ready` and waits for its flag; the parent sends the signals with
//! `kill`. SIGTERM sets the flag as Ctrl-C does; a second signal ends the child at once with
//! status 130.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use latent_core::train::StopFlag;

const CHILD_ENV: &str = "LATENT_CORE_SIGNAL_CHILD";
const PATIENCE: Duration = Duration::from_secs(30);

/// The child's side; does nothing in an ordinary test run. `exit`: exit 0 once the flag is set;
/// `linger`: keep running after it (until a second signal ends the process).
#[test]
fn signal_child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let flag = StopFlag::ctrl_c().unwrap();
    println!("ready");
    let deadline = Instant::now() + PATIENCE;
    while !flag.is_requested() {
        if Instant::now() > deadline {
            println!("no signal");
            std::process::exit(3);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("stop requested");
    if mode == "linger" {
        std::thread::sleep(PATIENCE);
        println!("no second signal");
        std::process::exit(4);
    }
    std::process::exit(0);
}

fn spawn(mode: &str) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "signal_child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads the child's output up to a line ending in `wanted` (the harness may have written the test's
/// name before it on the same line); the child exits within [`PATIENCE`], so this does not block
/// forever.
fn wait_for(lines: &mut Lines<BufReader<ChildStdout>>, wanted: &str) {
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.ends_with(wanted) {
            return;
        }
        assert!(
            !line.contains("no signal") && !line.contains("no second signal"),
            "the child gave up: {line} (waiting for {wanted:?})"
        );
    }
    panic!("the child ended before printing {wanted:?}");
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -s {signal}");
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("the child did not exit");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_requests_a_stop_like_ctrl_c() {
    let (mut child, mut lines) = spawn("exit");
    wait_for(&mut lines, "ready");
    send(&child, "TERM");
    wait_for(&mut lines, "stop requested");
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn a_second_signal_exits_at_once_with_status_130() {
    let (mut child, mut lines) = spawn("linger");
    wait_for(&mut lines, "ready");
    send(&child, "TERM");
    wait_for(&mut lines, "stop requested");
    let sent = Instant::now();
    send(&child, "INT");
    let status = wait_exit(&mut child);
    assert_eq!(latent_core::stop::SECOND_SIGNAL_EXIT_CODE, 130);
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(sent.elapsed() < Duration::from_secs(10), "exited at once");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("second interrupt"), "{stderr}");
}
