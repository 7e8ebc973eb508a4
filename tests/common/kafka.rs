//! Apache Kafka (KRaft, one node in combined broker and controller roles), in its own JVM on
//! free loopback ports, from the jars scripts/setup-test-env put under `$HUBCAP_TOOLS/kafka`.
//!
//! Most tests share one broker per test binary ([`Kafka::shared`]; topics and groups have unique
//! names, so tests running side by side never meet). A test that freezes, restarts or cuts off
//! its broker starts one of its own ([`Kafka::start`], stopped on drop).
//!
//! Every broker is started with `PR_SET_PDEATHSIG`, from a thread that lives as long as the test
//! process for the shared one, so no JVM outlives the test binary, even when it is killed.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

use super::{free_port, send_signal, tool, Proxy};

/// The broker's heap: the tests' topics are small. 2 cores: a serial collector and the C1
/// compiler only start the JVM in about half the time of the defaults.
const JVM_OPTS: &[&str] = &[
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:ActiveProcessorCount=2",
    "-Djava.awt.headless=true",
];

/// Broker settings for a fast single-node test cluster. Beside the replication factors a single
/// node needs: housekeeping runs every second instead of every five minutes (the retention and
/// compaction tests wait for it; no retention by default), groups start at once, and KIP-848 (`group.protocol=consumer`)
/// sessions may be as short as the classic ones the tests use.
const SETTINGS: &[(&str, &str)] = &[
    ("offsets.topic.replication.factor", "1"),
    ("offsets.topic.num.partitions", "4"),
    ("transaction.state.log.replication.factor", "1"),
    ("transaction.state.log.min.isr", "1"),
    ("transaction.state.log.num.partitions", "4"),
    ("share.coordinator.state.topic.replication.factor", "1"),
    ("share.coordinator.state.topic.num.partitions", "1"),
    ("group.initial.rebalance.delay.ms", "0"),
    ("group.consumer.min.session.timeout.ms", "3000"),
    ("group.consumer.session.timeout.ms", "6000"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("group.consumer.heartbeat.interval.ms", "1000"),
    ("auto.create.topics.enable", "false"),
    ("num.partitions", "1"),
    ("num.network.threads", "2"),
    ("num.io.threads", "4"),
    // Test records carry timestamps in the past, which time retention would delete at once: no
    // retention unless a topic sets `retention.ms` or `retention.bytes` itself.
    ("log.retention.ms", "-1"),
    ("log.initial.task.delay.ms", "1000"),
    ("log.retention.check.interval.ms", "1000"),
    ("log.cleaner.backoff.ms", "1000"),
    ("log.cleaner.dedupe.buffer.size", "8388608"),
    ("log.cleaner.threads", "1"),
];

pub struct Kafka {
    child: Option<Child>,
    /// What clients bootstrap from: the broker itself, or the proxy in front of it.
    pub brokers: String,
    port: u16,
    controller: u16,
    advertised: u16,
    dir: PathBuf,
    /// Removed on drop; the shared broker's directory is removed by the next test process.
    owned_dir: bool,
}

impl Kafka {
    /// The test binary's broker, started by the first test that asks.
    pub fn shared() -> &'static Kafka {
        static SHARED: OnceLock<Kafka> = OnceLock::new();
        SHARED.get_or_init(|| {
            // Started from a thread that never ends, so the broker's parent-death signal fires
            // when the test process exits, not when the first test's thread does.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let port = free_port();
                let mut kafka = Kafka::create(port, port);
                kafka.owned_dir = false;
                tx.send(kafka).unwrap();
                loop {
                    std::thread::park();
                }
            });
            rx.recv().expect("start the shared Kafka broker")
        })
    }

    /// A broker of the caller's own, stopped and removed on drop.
    pub fn start() -> Kafka {
        let port = free_port();
        Self::create(port, port)
    }

    /// A broker that clients reach only through a [`Proxy`], which can cut the network: the
    /// broker advertises the proxy's port, so clients that bootstrap through the proxy also
    /// connect through it afterwards.
    pub fn start_behind_proxy() -> (Kafka, Proxy) {
        let port = free_port();
        let proxy = Proxy::start(port);
        let kafka = Self::create(port, proxy.port);
        (kafka, proxy)
    }

    fn create(port: u16, advertised: u16) -> Kafka {
        sweep_stale_dirs();
        let dir = std::env::temp_dir().join(format!(
            "hubcap-kafka-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let mut kafka = Kafka {
            child: None,
            brokers: format!("127.0.0.1:{advertised}"),
            port,
            controller: free_port(),
            advertised,
            dir,
            owned_dir: true,
        };
        kafka.write_config();
        kafka.format();
        kafka.launch();
        kafka
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    fn write_config(&self) {
        let mut props = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{advertised}\n\
             controller.listener.names=CONTROLLER\n\
             inter.broker.listener.name=PLAINTEXT\n\
             listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
             log.dirs={data}\n",
            controller = self.controller,
            port = self.port,
            advertised = self.advertised,
            data = self.dir.join("data").display(),
        );
        for (k, v) in SETTINGS {
            props.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(self.config_path(), props).unwrap();
    }

    fn java(&self) -> Command {
        let libs = tool("kafka/libs");
        let mut c = Command::new("java");
        c.args(JVM_OPTS)
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                tool("kafka/log4j2.yaml").display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", libs.display()))
            .current_dir(&self.dir);
        c
    }

    /// Formats the data directory once (KRaft needs a cluster id and a metadata log).
    fn format(&self) {
        let id = cluster_id();
        let out = self
            .java()
            .args(["kafka.tools.StorageTool", "format"])
            // `=`: an id may start with '-'.
            .arg(format!("--cluster-id={id}"))
            .arg(format!("--config={}", self.config_path().display()))
            .output()
            .expect("run java (scripts/setup-test-env installs it)");
        assert!(
            out.status.success(),
            "kafka-storage format failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("broker.log")).unwrap();
        let mut cmd = self.java();
        cmd.args(["kafka.Kafka"])
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("start the Kafka broker"));
        self.wait_ready();
    }

    /// Waits until the broker answers a metadata request on its own port (the port opens a
    /// moment before the broker has caught up with its metadata log).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let direct = format!("127.0.0.1:{}", self.port);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the Kafka broker exited early ({status}):\n{}",
                    self.log_tail()
                );
            }
            if std::net::TcpStream::connect(&direct).is_ok() {
                let c: BaseConsumer = ClientConfig::new()
                    .set("bootstrap.servers", &direct)
                    .set("log_level", "0")
                    .create()
                    .unwrap();
                if c.fetch_metadata(None, Duration::from_secs(5))
                    .is_ok_and(|m| !m.brokers().is_empty())
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the Kafka broker did not start within 90 s:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The end of the broker's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub async fn create_topic(&self, name: &str, partitions: i32) {
        self.create_topic_with(name, partitions, &[]).await;
    }

    /// Creates a topic with topic-level settings (`cleanup.policy`, `segment.ms`, ...).
    pub async fn create_topic_with(&self, name: &str, partitions: i32, config: &[(&str, &str)]) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .unwrap();
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let results = admin
            .create_topics([&topic], &AdminOptions::new())
            .await
            .unwrap();
        for r in results {
            r.unwrap();
        }
    }

    /// Deletes a topic and waits until its name can be created again (KRaft removes a topic's
    /// data in the background).
    pub async fn delete_topic(&self, name: &str) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .unwrap();
        for r in admin
            .delete_topics(&[name], &AdminOptions::new())
            .await
            .unwrap()
        {
            r.unwrap();
        }
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let md = consumer
                .fetch_metadata(Some(name), Duration::from_secs(5))
                .unwrap();
            let gone = md
                .topics()
                .iter()
                .all(|t| t.name() != name || t.error().is_some() || t.partitions().is_empty());
            if gone {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "topic {name} not deleted in 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates a topic, retrying while a deletion of the same name is still under way.
    pub async fn recreate_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .unwrap();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let results = admin
                .create_topics([&topic], &AdminOptions::new())
                .await
                .unwrap();
            match &results[0] {
                Ok(_) => return,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("re-creating {name}: {e:?}; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => panic!("cannot re-create {name}: {e:?}"),
            }
        }
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker running").id()
    }

    /// Freezes the broker (SIGSTOP): its sockets stay open but nothing answers, like a broker
    /// that hangs.
    pub fn pause(&self) {
        send_signal(self.pid(), libc::SIGSTOP);
    }

    /// Thaws a paused broker (SIGCONT).
    pub fn resume(&self) {
        send_signal(self.pid(), libc::SIGCONT);
    }

    /// Crashes the broker (SIGKILL); its log is recovered at the next start. Its data stays for
    /// [`Kafka::restart`].
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the crashed broker again on the same ports and data.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "crash the broker first");
        self.launch();
    }

    /// The low and high watermarks of each partition (`isolation.level=read_uncommitted`, so
    /// the high watermark counts open transactions and the markers too).
    pub fn watermarks(&self, topic: &str, partitions: i32) -> Vec<(i64, i64)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("isolation.level", "read_uncommitted")
            .create()
            .unwrap();
        (0..partitions)
            .map(|p| {
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .unwrap()
            })
            .collect()
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.owned_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as
/// `kafka-storage random-uuid` prints (saves a JVM start).
fn cluster_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes: [u8; 16] = rand::random();
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = String::new();
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    out
}

/// Removes the data directories of test processes that are gone (the shared broker's directory
/// outlives its process, which has no destructor to run for it).
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hubcap-kafka-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
