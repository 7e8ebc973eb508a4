//! The hubcap binary: one-shot runs with a timeout, long-running instances that can be killed,
//! signals, and in-process run configurations.

use super::*;

/// The hubcap binary, logging at info.
pub fn hubcap() -> Command {
    hubcap_at(Path::new(env!("CARGO_BIN_EXE_hubcap")))
}

/// `program` (a hubcap binary, or a wrapper that runs one) as [`hubcap`] sets it up: logging at
/// info, no hubcap settings from the environment.
pub fn hubcap_at(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env("HUBCAP_LOG", "info,librdkafka=warn");
    for var in [
        "HUBCAP_BROKERS",
        "HUBCAP_TOPIC",
        "HUBCAP_GROUP",
        "HUBCAP_OUTPUT",
        "HUBCAP_CHECKPOINTS",
    ] {
        c.env_remove(var);
    }
    c
}

/// Runs `cmd` to completion within `timeout`, returning (success, stdout, stderr).
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (bool, String, String) {
    let (status, stdout, stderr) = run_status(cmd, timeout);
    (status.success(), stdout, stderr)
}

/// Runs `cmd` to completion within `timeout`, returning (its exit status, stdout, stderr).
pub fn run_status(
    cmd: &mut Command,
    timeout: Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained while the child runs: a full pipe would block it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command did not finish within {timeout:?}\nstderr:\n{}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, stdout.join().unwrap(), stderr.join().unwrap())
}

/// `hubcap run --once` of one topic into `output` with `extra` flags: (success, stdout, stderr).
pub fn run_once(
    brokers: &str,
    topic: &str,
    group: &str,
    output: &str,
    extra: &[&str],
) -> (bool, String, String) {
    run_with_timeout(
        hubcap()
            .args([
                "run",
                "--brokers",
                brokers,
                "--topic",
                topic,
                "--group",
                group,
                "--once",
            ])
            .args(["--output", output])
            .args(extra),
        Duration::from_secs(120),
    )
}

/// Sends `signal` to process `pid`; panics if it cannot be delivered.
pub fn send_signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("pid fits in pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {signal}): {}",
        std::io::Error::last_os_error()
    );
}

/// A hubcap process whose stderr is collected line by line on a thread, so a test can wait for
/// log lines, read the whole log afterwards, and signal the process. Killed on drop.
pub struct Instance {
    pub name: String,
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    status: Option<std::process::ExitStatus>,
}

impl Instance {
    /// Spawns `cmd` (stdout discarded, stderr collected).
    pub fn spawn(name: &str, mut cmd: Command) -> Instance {
        use std::io::BufRead;
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        Instance {
            name: name.to_string(),
            child,
            lines,
            reader: Some(reader),
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// The stderr lines read so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    pub fn line_count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The log so far, for failure messages.
    pub fn log(&self) -> String {
        format!("--- {} stderr ---\n{}", self.name, self.lines().join("\n"))
    }

    /// How many lines from line `from` on contain `needle`.
    pub fn count_since(&self, from: usize, needle: &str) -> usize {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .skip(from)
            .filter(|l| l.contains(needle))
            .count()
    }

    /// The index of the last line so far that contains `needle`.
    pub fn last_line_with(&self, needle: &str) -> Option<usize> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .rposition(|l| l.contains(needle))
    }

    /// The exit status, if the process ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    /// Waits until a line from line `from` on contains `needle` and returns its index; panics
    /// with the log if the process ends or `timeout` passes first.
    pub fn wait_for_line(&mut self, from: usize, needle: &str, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .skip(from)
                .position(|l| l.contains(needle))
            {
                return from + i;
            }
            if let Some(status) = self.exited() {
                // Let the reader catch up before concluding the line never came.
                self.join_reader();
                if let Some(i) = self
                    .lines()
                    .iter()
                    .skip(from)
                    .position(|l| l.contains(needle))
                {
                    return from + i;
                }
                panic!(
                    "{} exited ({status}) without logging {needle:?}\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} within {timeout:?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The partitions the process owns, from its log: what the assignments gave and the
    /// revocations did not take away; `None` before its first assignment and after a revocation
    /// that left it nothing (an eager rebalance, or a lost session, until it is assigned again).
    pub fn assignment(&self) -> Option<Vec<i32>> {
        // Sets, not lists: with cooperative rebalancing (`cooperative-sticky`, or the KIP-848
        // consumer protocol) each line names only the partitions added or taken away.
        let mut current: Option<std::collections::BTreeSet<i32>> = None;
        for line in self.lines.lock().unwrap().iter() {
            if line.contains("partitions assigned") {
                current
                    .get_or_insert_default()
                    .extend(logged_partitions(line));
            } else if line.contains("partitions revoked") {
                if let Some(owned) = current.as_mut() {
                    for p in logged_partitions(line) {
                        owned.remove(&p);
                    }
                }
                current = current.filter(|owned| !owned.is_empty());
            }
        }
        current.map(|owned| owned.into_iter().collect())
    }

    /// Waits for the process to end within `timeout` (panicking with its log otherwise) and
    /// returns its status once its whole log was read.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.exited() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        self.join_reader();
        status
    }

    /// SIGKILL, then reaps the process.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
        }
        self.status = Some(self.child.wait().unwrap());
        self.join_reader();
    }

    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `partitions=[0, 1]` field of a rebalance log line.
pub fn logged_partitions(line: &str) -> Vec<i32> {
    let Some(start) = line.find("partitions=[") else {
        panic!("no partitions field in {line:?}");
    };
    let rest = &line[start + "partitions=[".len()..];
    let list = &rest[..rest.find(']').expect("closing bracket")];
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Runs `cmd` to completion, measuring wall time, CPU time and peak RSS.
///
/// The peak is the child's own `VmHWM` (its peak so far), sampled every 5 ms until it exits
/// (a peak in its last 5 ms is missed), not `wait4`'s `ru_maxrss`: Linux carries
/// the parent's high-water mark into a forked child across `exec`, so `ru_maxrss` never reports
/// less than what this test process held when it spawned the child (96 MiB in benches/replay.rs
/// for a replay whose own peak was 54 MiB). `ru_maxrss` is the fallback when no sample was taken.
pub fn measure(mut cmd: Command) -> (f64, f64, f64) {
    let started = Instant::now();
    // Reaped below with wait4, which also reports the child's resource usage.
    #[allow(clippy::zombie_processes)]
    let child = cmd.stdout(Stdio::null()).spawn().unwrap();
    let id = child.id() as i32;
    let exited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let exited = exited.clone();
        std::thread::spawn(move || {
            let mut peak_kib = 0u64;
            loop {
                // The flag first: a read after it was set still finds the child's entry (it
                // is not reaped before this thread ends), without VmHWM once it has exited.
                let done = exited.load(std::sync::atomic::Ordering::Acquire);
                if let Some(kib) = vm_hwm_kib(id) {
                    peak_kib = peak_kib.max(kib);
                }
                if done {
                    return peak_kib;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child without reaping it (WNOWAIT), so its pid stays ours
    // while the sampler reads its /proc entry; the pointer is valid for the call.
    let waited = unsafe {
        libc::waitid(
            libc::P_PID,
            id as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(waited, 0, "waitid for the measured child");
    exited.store(true, std::sync::atomic::Ordering::Release);
    let sampled_kib = sampler.join().unwrap_or(0);
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: reaps our own child; both pointers are valid for the call.
    let pid = unsafe { libc::wait4(id, &mut status, 0, &mut usage) };
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(pid, id);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "run failed: {status}"
    );
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let peak_kib = match sampled_kib {
        0 => usage.ru_maxrss as u64,
        kib => kib,
    };
    (
        seconds,
        tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_kib as f64 / 1024.0,
    )
}

/// A running process's peak resident memory (`VmHWM`), in KiB; `None` once it has exited.
fn vm_hwm_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// A validated `hubcap run` configuration from the words after `run`, for in-process runs.
pub fn run_config(args: &[&str]) -> hubcap::run::RunConfig {
    use clap::Parser;
    let cli = hubcap::cli::Cli::try_parse_from(["hubcap", "run"].iter().chain(args)).unwrap();
    match cli.command {
        hubcap::cli::Command::Run(args) => args.validate().unwrap(),
        _ => unreachable!("parsed a run command"),
    }
}
