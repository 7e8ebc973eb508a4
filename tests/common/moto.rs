//! moto's S3 server (a Python S3 emulator from the test venv), in its own process on a free
//! loopback port, stopped on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, run_python, script, tool, wait_for_port};

pub struct Moto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(tool("venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        wait_for_port(port, "moto_server", &mut child);
        Moto {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with one unsigned `PUT /BUCKET` (moto does not check signatures). The
    /// port can accept connections a moment before the server answers, so this retries.
    pub fn create_bucket(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.put_bucket(name) {
                Ok(200) => return,
                Ok(status) => panic!("PUT /{name} on moto: HTTP {status}"),
                Err(e) => assert!(
                    Instant::now() < deadline,
                    "PUT /{name} on moto did not answer: {e}"
                ),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn put_bucket(&self, name: &str) -> std::io::Result<u16> {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port))?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            conn,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        conn.read_to_string(&mut response)?;
        response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {response:?}")))
    }

    /// Environment for object_store (and so hubcap) to reach this server: its endpoint over
    /// plain HTTP, a region and dummy keys (moto accepts any).
    pub fn env(&self) -> [(&'static str, String); 5] {
        [
            ("AWS_ENDPOINT", self.url()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The archive under `s3://bucket/prefix` as fastavro reads it (listed and fetched with boto3,
/// which moto brings along).
pub fn read_moto(moto: &Moto, bucket: &str, prefix: &str) -> Vec<Value> {
    let out = run_python(&script("read_s3.py"), &[&moto.url(), bucket, prefix]);
    let doc: Value = serde_json::from_slice(&out).unwrap();
    doc["files"].as_array().unwrap().clone()
}
