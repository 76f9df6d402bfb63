//! Upload throughput of the `gemini` client against `curl` doing the same resumable upload,
//! and the client's peak memory for a 1 GiB upload. A benchmark that prints figures, not a
//! test:
//!
//! ```text
//! scripts/bench-upload.sh        # builds the release emulator, then runs this
//! ```
//!
//! Both clients upload a 256 MiB file from disk to one `gemini-emulator` process (release
//! build, `--processing-ms 0`) on loopback: the client in 8 MiB chunks, curl in one
//! `upload, finalize` request streamed from the file (`-T`). Each is run 3 times; medians
//! are printed. The peak RSS (`VmHWM`) is read in a child process that does nothing but one
//! 1 GiB upload.

use std::{
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use gemini::{ApiKey, Client, ClientConfig, FileSource, UploadRequest};

const MIB: u64 = 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--rss-child") {
        return rss_child(&args[at + 1], Path::new(&args[at + 2]));
    }
    let emulator_bin = std::env::var("GEMINI_EMULATOR_BIN")
        .unwrap_or_else(|_| "target/release/gemini-emulator".into());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _emulator = Emulator(
        Command::new(&emulator_bin)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--processing-ms", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {emulator_bin}: {e} (run scripts/bench-upload.sh)")
            }),
    );
    wait_for(&base);

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let small = dir.join("256mib.bin");
    write_file(&small, 256 * MIB);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        ours.push(runtime.block_on(upload_with_client(&base, &small)));
        theirs.push(upload_with_curl(&base, &small));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let mibps = |d: Duration| 256.0 / d.as_secs_f64();
    println!("upload of 256 MiB to gemini-emulator on loopback (median of 3):");
    println!("  gemini client : {:>7.0} ms  {:>6.0} MiB/s", ours.as_secs_f64() * 1e3, mibps(ours));
    println!(
        "  curl          : {:>7.0} ms  {:>6.0} MiB/s",
        theirs.as_secs_f64() * 1e3,
        mibps(theirs)
    );
    println!("  ratio client/curl throughput: {:.2}", theirs.as_secs_f64() / ours.as_secs_f64());

    let big = dir.join("1gib.bin");
    write_file(&big, 1024 * MIB);
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--rss-child", &base])
        .arg(&big)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// One 1 GiB upload through the client, then this process's peak RSS.
fn rss_child(base: &str, path: &Path) {
    let before = peak_rss_kib();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let took = runtime.block_on(upload_with_client(base, path));
    let peak = peak_rss_kib();
    println!(
        "upload of 1 GiB through the gemini client: {:.1} s; peak RSS {:.1} MiB (before the upload {:.1} MiB)",
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

async fn upload_with_client(base: &str, path: &Path) -> Duration {
    let client =
        Client::new(ClientConfig::new(base.parse().unwrap(), ApiKey::new("bench").unwrap()))
            .unwrap();
    let size = std::fs::metadata(path).unwrap().len();
    let started = Instant::now();
    let req = UploadRequest { display_name: None, mime_type: "video/mp4".into(), size_bytes: size };
    let uploaded = client.upload_from(&req, &FileSource::new(path)).await.unwrap();
    assert_eq!(uploaded.size_bytes, size);
    started.elapsed()
}

/// The same resumable upload with curl: `start`, then one streamed `upload, finalize`.
fn upload_with_curl(base: &str, path: &Path) -> Duration {
    let size = std::fs::metadata(path).unwrap().len();
    let started = Instant::now();
    let start = Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("{base}/upload/v1beta/files"),
        ])
        .args([
            "-H",
            "x-goog-api-key: bench",
            "-H",
            "X-Goog-Upload-Protocol: resumable",
            "-H",
            "X-Goog-Upload-Command: start",
        ])
        .args([
            "-H",
            &format!("X-Goog-Upload-Header-Content-Length: {size}"),
            "-H",
            "X-Goog-Upload-Header-Content-Type: video/mp4",
        ])
        .args(["-H", "Content-Type: application/json", "-d", "{}"])
        .output()
        .expect("curl");
    let headers = String::from_utf8(start.stdout).unwrap();
    let url = headers
        .lines()
        .find_map(|l| l.strip_prefix("x-goog-upload-url: "))
        .expect("an x-goog-upload-url")
        .trim()
        .to_string();
    let done = Command::new("curl")
        .args(["-sS", "-f", "-o", "/dev/null", "-X", "POST", "-T"])
        .arg(path)
        .args([
            "-H",
            "X-Goog-Upload-Command: upload, finalize",
            "-H",
            "X-Goog-Upload-Offset: 0",
            &url,
        ])
        .status()
        .expect("curl");
    assert!(done.success());
    started.elapsed()
}

fn write_file(path: &Path, size: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let block: Vec<u8> =
        (0..MIB as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for i in 0..size / MIB {
        let mut b = block.clone();
        b[0] = i as u8;
        out.write_all(&b).unwrap();
    }
    out.flush().unwrap();
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(base: &str) {
    let addr = base.trim_start_matches("http://").to_string();
    for _ in 0..200 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the emulator did not start at {base}");
}

/// Stops the emulator process when the benchmark ends.
struct Emulator(Child);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
