//! A real Kamailio presence server on loopback for the tests, from
//! `tests/kamailio/presence.cfg`: started on a free port with db_text tables in a
//! directory of its own, ready once it answers OPTIONS, stopped (its whole process
//! group) when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::net::UdpSocket;

/// Where Debian's `kamailio` package puts the binary and the db_text templates.
const BINARY: &str = "/usr/sbin/kamailio";
const TABLES: &str = "/usr/share/kamailio/dbtext/kamailio";

/// How a test's Kamailio is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// PUBLISH accepted from loopback without authentication.
    Open,
    /// PUBLISH challenged with digest, `algorithm`: "MD5" or "SHA-256".
    Digest(&'static str),
    /// Open, and TLS too, with a self-signed certificate for 127.0.0.1.
    Tls,
}

/// Where Kamailio keeps publications (its presence module's `publ_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// In memory and in db_text tables (`publ_cache = 1`): what the tests run.
    Database,
    /// In memory only (`publ_cache = 2`): the server's fastest mode, for capacity.
    Memory,
}

/// The password the digest profile accepts.
pub const PASSWORD: &str = "sip-test-secret";

pub struct Kamailio {
    child: Child,
    profile: Profile,
    storage: Storage,
    shm_mb: Option<u32>,
    pub addr: SocketAddr,
    /// With [`Profile::Tls`]: the TLS port and the certificate's file.
    pub tls: Option<(SocketAddr, PathBuf)>,
    dir: PathBuf,
}

impl Kamailio {
    /// Starts one, or returns None (after `support::missing`) when Kamailio and its
    /// presence modules are not installed.
    pub async fn start(profile: Profile) -> Option<Kamailio> {
        Kamailio::start_with(profile, Storage::Database, None).await
    }

    /// Like [`Kamailio::start`], keeping publications in `storage`, with `shm_mb`
    /// megabytes of shared memory (Kamailio's `-m`; its default of 64 holds some ten
    /// thousand publications).
    pub async fn start_with(
        profile: Profile,
        storage: Storage,
        shm_mb: Option<u32>,
    ) -> Option<Kamailio> {
        let modules = Path::new("/usr/lib/x86_64-linux-gnu/kamailio/modules/presence_xml.so");
        if !Path::new(BINARY).is_file() || !Path::new(TABLES).is_dir() || !modules.is_file() {
            super::missing(
                "Kamailio with its presence modules (apt install kamailio kamailio-presence-modules)",
            );
            return None;
        }
        for attempt in 0..5 {
            match Kamailio::try_start(profile, storage, shm_mb, None).await {
                Ok(k) => return Some(k),
                Err(e) if attempt < 4 => {
                    eprintln!("Kamailio did not start ({e}); trying another port")
                }
                Err(e) => panic!("Kamailio does not start: {e}"),
            }
        }
        None
    }

    /// Stops this one and starts a fresh one (empty tables) on the same port: a server
    /// that restarted and lost every publication.
    pub async fn restart(self) -> Kamailio {
        let (profile, storage, shm_mb, port) =
            (self.profile, self.storage, self.shm_mb, self.addr.port());
        drop(self);
        let mut last = String::new();
        // The old one's sockets may take a moment to close.
        for _ in 0..50 {
            match Kamailio::try_start(profile, storage, shm_mb, Some(port)).await {
                Ok(k) => return k,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Kamailio does not start again on port {port}: {last}");
    }

    async fn try_start(
        profile: Profile,
        storage: Storage,
        shm_mb: Option<u32>,
        port: Option<u16>,
    ) -> Result<Kamailio, String> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ews-presence-kamailio-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("db")).map_err(|e| e.to_string())?;
        for table in [
            "presentity",
            "active_watchers",
            "watchers",
            "xcap",
            "pua",
            "version",
        ] {
            std::fs::copy(Path::new(TABLES).join(table), dir.join("db").join(table))
                .map_err(|e| format!("{table}: {e}"))?;
        }
        let port = port.unwrap_or_else(free_port);
        let tls = if profile == Profile::Tls {
            let tls_port = free_port();
            let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])
                .map_err(|e| e.to_string())?;
            let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
            std::fs::write(&cert_file, cert.cert.pem()).map_err(|e| e.to_string())?;
            std::fs::write(&key_file, cert.signing_key.serialize_pem())
                .map_err(|e| e.to_string())?;
            let tls_config = format!(
                "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\nprivate_key = {}\ncertificate = {}\n",
                key_file.display(),
                cert_file.display()
            );
            std::fs::write(dir.join("tls.cfg"), tls_config).map_err(|e| e.to_string())?;
            Some((SocketAddr::from(([127, 0, 0, 1], tls_port)), cert_file))
        } else {
            None
        };
        let template = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/presence.cfg"),
        )
        .map_err(|e| e.to_string())?;
        let (auth, algorithm) = match profile {
            Profile::Open => ("", "MD5"),
            Profile::Digest(algorithm) => ("#!define WITH_AUTH", algorithm),
            Profile::Tls => ("", "MD5"),
        };
        let config = template
            .replace("@PORT@", &port.to_string())
            .replace("@DB@", &dir.join("db").display().to_string())
            .replace(
                "@PUBL_CACHE@",
                match storage {
                    Storage::Database => "1",
                    Storage::Memory => "2",
                },
            )
            .replace("@AUTH@", auth)
            .replace("@ALGORITHM@", algorithm)
            .replace(
                "@TLS@",
                if tls.is_some() {
                    "#!define WITH_TLS"
                } else {
                    ""
                },
            )
            .replace(
                "@TLS_PORT@",
                &tls.as_ref().map_or(0, |(a, _)| a.port()).to_string(),
            )
            .replace("@TLS_CONFIG@", &dir.join("tls.cfg").display().to_string());
        std::fs::write(dir.join("kamailio.cfg"), config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("kamailio.log")).map_err(|e| e.to_string())?;
        use std::os::unix::process::CommandExt;
        let child = Command::new(BINARY)
            .arg("-f")
            .arg(dir.join("kamailio.cfg"))
            .args(["-DD", "-E", "-w"])
            .arg(&dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .args(shm_mb.map(|mb| format!("-m{mb}")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| e.to_string())?;
        let kamailio = Kamailio {
            child,
            profile,
            storage,
            shm_mb,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tls,
            dir,
        };
        kamailio.answers_options().await?;
        Ok(kamailio)
    }

    /// Waits (10 s at most) until it answers OPTIONS with 200.
    async fn answers_options(&self) -> Result<(), String> {
        let socket = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let local = socket.local_addr().map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut buffer = vec![0u8; 65536];
        for n in 0.. {
            let options = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-ready-{n}\r\nMax-Forwards: 70\r\nFrom: <sip:test@{addr}>;tag=r{n}\r\nTo: <sip:{addr}>\r\nCall-ID: ready-{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                addr = self.addr
            );
            let _ = socket.send_to(options.as_bytes(), self.addr).await;
            if let Ok(Ok((len, _))) =
                tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buffer))
                    .await
                && buffer[..len].starts_with(b"SIP/2.0 200")
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default();
                return Err(format!(
                    "no answer to OPTIONS on {} within 10 s; log:\n{log}",
                    self.addr
                ));
            }
        }
        Ok(())
    }

    /// `sip:127.0.0.1:<port>;transport=<transport>` (the TLS port for `tls`).
    pub fn uri(&self, transport: &str) -> String {
        match (&self.tls, transport) {
            (Some((addr, _)), "tls") => format!("sip:{addr};transport=tls"),
            _ => format!("sip:{};transport={transport}", self.addr),
        }
    }

    /// Its log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // Kamailio forks its workers into the group it leads.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port free on loopback for both UDP and TCP, as far as can be told now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP port");
        let port = udp.local_addr().expect("bound").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
