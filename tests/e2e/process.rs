//! `sluice` as a process of its own: this test binary, running the ignored
//! test below, which runs the command line as `main` does (the log through
//! the redaction, on stderr).
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ARGS_ENV: &str = "SLUICE_TEST_ARGS";

/// `sluice ARGS…` as a process of its own (this test binary, running the
/// ignored test below), its log lines collected as they come.
pub struct SluiceProcess {
    pub child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl SluiceProcess {
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "process::sluice_process", "--nocapture"])
            .env(ARGS_ENV, args.join("\n"))
            .env("SLUICE_LOG", "info")
            // Tests run side by side: none takes the default port unless it asks.
            .env("SLUICE_HTTP", "off")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || lines.lines().map_while(Result::ok).for_each(|l| sink.lock().unwrap().push(l)));
        SluiceProcess { child, log }
    }

    /// Waits until a log line contains every one of `parts`; returns it.
    pub fn wait_for_line(&self, parts: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?} within {within:?}; the log:\n{}",
                self.log.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The exit code, waiting at most `within`.
    pub fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Ctrl-C.
    pub fn interrupt(&self) {
        self.signal("-INT");
    }

    /// What a service manager sends to stop a service.
    pub fn terminate(&self) {
        self.signal("-TERM");
    }

    fn signal(&self, signal: &str) {
        Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
    }
}

impl Drop for SluiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Not a test of its own: the `sluice` process of the tests here.
#[test]
#[ignore = "run by the tests that start sluice as a process"]
fn sluice_process() {
    let args = std::env::var(ARGS_ENV).expect("started by a test");
    sluice::redact::install_panic_hook();
    let argv: Vec<std::ffi::OsString> = std::iter::once("sluice").chain(args.split('\n')).map(Into::into).collect();
    sluice::cli::install_log(&argv);
    let code = sluice::cli::run(argv, &mut std::io::empty(), &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}

/// Runs `sluice ARGS…` to its end with `env` set; its exit code and all it
/// wrote, stdout and stderr together (read as it comes: a full pipe would
/// hold the process up).
pub fn run_to_end(args: &[&str], env: &[(&str, &str)], within: Duration) -> (Option<i32>, String) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "process::sluice_process", "--nocapture", "--quiet"])
        .env(ARGS_ENV, args.join("\n"))
        .env_remove("SLUICE_LOG")
        .env("SLUICE_HTTP", "off")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read(Box::new(child.stdout.take().unwrap()));
    let stderr = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    (status.code(), format!("{}{}", stdout.join().unwrap(), stderr.join().unwrap()))
}
