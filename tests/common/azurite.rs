//! Azurite, the Azure Blob emulator from npm, on a free loopback port, stopped on drop.

use super::*;

/// Azurite's blob service, in memory, in its own process.
pub struct Azurite {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Azurite {
    pub fn start() -> Azurite {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut child = Command::new(tool("azurite/node_modules/.bin/azurite-blob"))
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--silent", "--disableTelemetry"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        wait_for_port(port, "azurite", &mut child);
        Azurite {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn account_endpoint(&self) -> String {
        format!("{}/devstoreaccount1", self.url())
    }

    /// Creates a container that allows anonymous reads, so the reader needs no credentials.
    pub fn create_container(&self, name: &str) {
        run_python(
            &script("azurite_container.py"),
            &[&self.account_endpoint(), name],
        );
    }

    /// Creates a container without anonymous access (Azure's default): every request needs
    /// valid credentials.
    pub fn create_private_container(&self, name: &str) {
        run_python(
            &script("azurite_container.py"),
            &[&self.account_endpoint(), name, "private"],
        );
    }

    /// Environment for hubcap to reach this Azurite through object_store's emulator support.
    pub fn env(&self) -> [(&'static str, String); 2] {
        [
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.url()),
        ]
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
