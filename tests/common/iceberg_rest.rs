//! Apache Iceberg's REST catalog server (`RESTCatalogServer` from Maven Central's jars, which
//! scripts/setup-test-env installs), in its own process on a free loopback port, with a SQLite
//! catalog and a warehouse in a directory of its own, so that a restart keeps its tables.
//! Stopped on drop. The server binds every interface with SO_REUSEPORT, so a stale server would
//! share the port silently: the port is checked to answer nothing before each start.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, tool};

pub struct IcebergRest {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl IcebergRest {
    pub fn start() -> IcebergRest {
        let mut rest = IcebergRest {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        rest.spawn();
        rest
    }

    /// `http://127.0.0.1:PORT`, the catalog's base URI.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self) {
        assert!(
            get(self.port, "/v1/config").is_err(),
            "something answers on port {} already",
            self.port
        );
        let libs = tool("iceberg-rest/libs");
        assert!(
            libs.exists(),
            "{} is missing: run scripts/setup-test-env",
            libs.display()
        );
        let warehouse = self.dir.path().join("warehouse");
        std::fs::create_dir_all(&warehouse).unwrap();
        let log = std::fs::File::create(self.log()).unwrap();
        let child = Command::new("java")
            .args(["-Xmx384m", "-XX:TieredStopAtLevel=1"])
            .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
            .arg("-cp")
            .arg(format!("{}/*", libs.display()))
            .arg("org.apache.iceberg.rest.RESTCatalogServer")
            .env(
                "CATALOG_WAREHOUSE",
                format!("file://{}", warehouse.display()),
            )
            .env(
                "CATALOG_URI",
                format!("jdbc:sqlite:{}/catalog.db", self.dir.path().display()),
            )
            .env("CATALOG_REST_PORT", self.port.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start java (scripts/setup-test-env installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while !matches!(get(self.port, "/v1/config"), Ok((200, _))) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the Iceberg REST catalog exited ({status}):\n{}",
                    std::fs::read_to_string(self.log()).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the Iceberg REST catalog did not answer in 90 s"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Stops the server and waits until its port answers nothing.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same tables.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// `GET path` on the server: (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        get(self.port, path).expect("the Iceberg REST catalog answers")
    }
}

impl Drop for IcebergRest {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One `GET` over a plain socket (HTTP/1.0: no chunked body): (status, body).
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )?;
    let mut response = String::new();
    conn.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
