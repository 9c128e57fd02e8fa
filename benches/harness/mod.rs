//! Helpers shared by the benchmark binaries: a keep-alive HTTP/1.1 connection and
//! process CPU and memory from /proc.
#![allow(dead_code)]

pub mod counting;
pub mod storm;
pub mod watch;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The benchmark's positional arguments, and whether it was run to measure
/// (`cargo bench` passes `--bench`; `cargo test --all-targets` does not: smoke mode).
pub fn arguments() -> (Vec<String>, bool) {
    let args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    (args, std::env::args().any(|a| a == "--bench"))
}

/// The multi-threaded runtime a benchmark runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Positional argument `i` as a number, else `default`.
pub fn number<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Starts `ews-presence simulate --listen LISTEN ARGS...` as its own process, its
/// standard error going to `stderr`; returns it with the address it listens on.
pub fn spawn_simulator(
    listen: &str,
    args: &[String],
    stderr: std::process::Stdio,
) -> (std::process::Child, std::net::SocketAddr) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ews-presence"))
        .args(["simulate", "--listen", listen])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("simulator process");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("its address");
    let addr = line
        .split("listening on http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the simulator did not start: {line:?}"));
    (child, addr)
}

/// A keep-alive HTTP/1.1 sender on one connection.
pub type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Opens a connection to `addr`.
pub async fn connect(addr: impl tokio::net::ToSocketAddrs) -> Sender {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    sender
}

/// The whole body of `response`.
pub async fn body_of(response: hyper::Response<hyper::body::Incoming>) -> Bytes {
    use http_body_util::BodyExt;
    response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
}

/// A `GET path` request with no body.
pub fn get_request(path: &str) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .uri(path)
        .header("Host", "localhost")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

/// Resource use of a process (`"self"` or a pid).
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_seconds: f64,
    /// Resident bytes now.
    pub rss: u64,
    /// Peak resident bytes.
    pub peak_rss: u64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn usage(pid: &str) -> Usage {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // CLK_TCK is 100 on Linux.
    Usage {
        cpu_seconds: ticks / 100.0,
        rss: kib("VmRSS:") * 1024,
        peak_rss: kib("VmHWM:") * 1024,
    }
}

/// The `p` quantile of sorted durations, in milliseconds (NaN when empty).
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Rounded to two decimals.
pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A loopback port free now (for a listener whose address must be known before it is
/// bound: Graph's notification URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
