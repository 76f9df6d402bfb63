//! Uploads through Parley against the same upload straight to the emulator, side by side in
//! one run: a 256 MiB file sent by curl to `upload_file` (Parley relays it to Gemini's
//! resumable upload while it arrives, and keeps the original) versus curl's own resumable
//! upload to the emulator; Parley's peak RSS for a 1 GiB upload; and a re-attached file that
//! the session already has (the page's `find_upload` answers; nothing is sent). A benchmark that prints
//! figures, not a test:
//!
//! ```text
//! scripts/bench-upload.sh        # builds the release emulator and parley, then runs this
//! ```
//!
//! The emulator is the release `gemini-emulator` (`--processing-ms 0`, `GEMINI_EMULATOR_BIN`),
//! Parley the release `parley` with its limits off; both on loopback. Each 256 MiB upload is
//! run 3 times (distinct content, so that no dedup applies); medians are printed.

use std::{
    io::Write,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const MIB: u64 = 1024 * 1024;

/// A child process, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() {
    let emulator_bin = std::env::var("GEMINI_EMULATOR_BIN")
        .unwrap_or_else(|_| "target/release/gemini-emulator".into());
    let emulator_port = free_port();
    let gemini = format!("http://127.0.0.1:{emulator_port}");
    let _emulator = Running(
        Command::new(&emulator_bin)
            .args(["--listen", &format!("127.0.0.1:{emulator_port}"), "--processing-ms", "0"])
            // Video is otherwise PROCESSING for a while; only the transfer is measured.
            .args(["--processing-for", "video/=0s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {emulator_bin}: {e} (run scripts/bench-upload.sh)")
            }),
    );
    wait_for(&gemini);
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let (parley, parley_url) = start_parley(&gemini, &data_dir);
    let jar = temp.path().join("cookies");

    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for seed in 0..3u8 {
        let file = temp.path().join(format!("256mib-{seed}.bin"));
        write_file(&file, 256 * MIB, seed);
        direct.push(upload_direct(&gemini, &file));
        let other = temp.path().join(format!("256mib-{seed}-p.bin"));
        write_file(&other, 256 * MIB, seed.wrapping_add(100));
        through.push(upload_through(&parley_url, &jar, &other).0);
        std::fs::remove_file(&file).unwrap();
        if seed < 2 {
            std::fs::remove_file(&other).unwrap();
        }
    }
    let (direct, through) = (median(direct), median(through));
    let mibps = |d: Duration| 256.0 / d.as_secs_f64();
    println!("upload of 256 MiB on loopback, as fast as the CPUs go (median of 3):");
    println!("  curl → emulator          : {:>6.0} ms  {:>5.0} MiB/s", ms(direct), mibps(direct));
    println!("  curl → parley → emulator : {:>6.0} ms  {:>5.0} MiB/s", ms(through), mibps(through));
    println!("  ratio parley/direct time : {:.2}", through.as_secs_f64() / direct.as_secs_f64());

    // The same with the browser's side at a network's pace (curl --limit-rate), where the
    // relay's overlap shows: a server that stored the upload first would add its whole
    // transfer to Gemini after it.
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for seed in 0..3u8 {
        let file = temp.path().join(format!("256mib-paced-{seed}.bin"));
        write_file(&file, 256 * MIB, seed.wrapping_add(50));
        direct.push(upload_direct_paced(&gemini, &file, Some(PACE)));
        write_file(&file, 256 * MIB, seed.wrapping_add(150));
        through.push(upload_through_paced(&parley_url, &jar, &file, Some(PACE)).0);
        std::fs::remove_file(&file).unwrap();
    }
    let (direct, through) = (median(direct), median(through));
    println!("the same with the client sending at most {PACE}B/s (median of 3):");
    println!("  curl → emulator          : {:>6.0} ms  {:>5.0} MiB/s", ms(direct), mibps(direct));
    println!("  curl → parley → emulator : {:>6.0} ms  {:>5.0} MiB/s", ms(through), mibps(through));
    println!("  ratio parley/direct time : {:.2}", through.as_secs_f64() / direct.as_secs_f64());

    // Re-attaching the last file: the page asks `find_upload` with its SHA-256 first.
    let last = temp.path().join("256mib-2-p.bin");
    let sha = sha256_of(&last);
    let started = Instant::now();
    let out = curl_json(
        &parley_url,
        &jar,
        "find_upload",
        &format!(r#"{{"sha256":"{sha}"}}"#),
        &["-w", "\n%{time_total}"],
    );
    let process = started.elapsed();
    let (found, answered) = out.rsplit_once('\n').expect("curl's time_total follows the answer");
    assert!(found.contains(&sha), "the session's File is found: {found}");
    println!(
        "re-attaching a 256 MiB file already uploaded: find_upload answered in {:.1} ms \
         (the curl process: {:.1} ms), 0 bytes sent",
        answered.trim().parse::<f64>().expect("a time in seconds") * 1e3,
        ms(process)
    );
    std::fs::remove_file(&last).unwrap();

    // The peak of a process that has done nothing else.
    drop(parley);
    let (parley, parley_url) = start_parley(&gemini, &temp.path().join("data-1gib"));
    let big = temp.path().join("1gib.bin");
    write_file(&big, 1024 * MIB, 7);
    let before = status_kib(parley.0.id(), "VmHWM:");
    let (took, _) = upload_through(&parley_url, &jar, &big);
    let peak = status_kib(parley.0.id(), "VmHWM:");
    println!(
        "upload of 1 GiB through a fresh parley: {:.1} s; its peak RSS {:.1} MiB (before {:.1} MiB)",
        took.as_secs_f64(),
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// The release `parley` on `gemini` with its limits off, and its URL.
fn start_parley(gemini: &str, data_dir: &Path) -> (Running, String) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let parley = Running(
        Command::new(env!("CARGO_BIN_EXE_parley"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--gemini-api-key", "bench"])
            .args(["--gemini-base-url", gemini, "--rate-upload", "off"])
            .args(["--upload-bytes-per-hour", "0"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("PARLEY_LOG", "warn")
            .env("LEPTOS_OUTPUT_NAME", "parley")
            .stdout(Stdio::null())
            .spawn()
            .expect("parley starts"),
    );
    wait_for(&url);
    (parley, url)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The client's pace in the second comparison (curl's `--limit-rate`: 100 MiB/s).
const PACE: &str = "100M";

/// `upload_file` with curl (multipart streamed from the file); the time and the answer.
fn upload_through(parley: &str, jar: &Path, path: &Path) -> (Duration, String) {
    upload_through_paced(parley, jar, path, None)
}

/// [`upload_through`] with curl sending at most `pace` bytes a second.
fn upload_through_paced(
    parley: &str,
    jar: &Path,
    path: &Path,
    pace: Option<&str>,
) -> (Duration, String) {
    let size = std::fs::metadata(path).unwrap().len();
    let mut curl = Command::new("curl");
    curl.args(["-sS", "-f", "-b"]).arg(jar).arg("-c").arg(jar);
    if let Some(pace) = pace {
        curl.args(["--limit-rate", pace]);
    }
    curl.args(["-F", &format!("size={size}"), "-F", "mime_type=video/mp4", "-F", "name=bench.mp4"]);
    curl.arg("-F").arg(format!("file=@{};type=video/mp4", path.display()));
    curl.arg(format!("{parley}/api/upload_file"));
    let started = Instant::now();
    let out = curl.output().expect("curl");
    let took = started.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `function` called with the JSON `body` by curl (with `extra` arguments): what it printed.
fn curl_json(parley: &str, jar: &Path, function: &str, body: &str, extra: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-f", "-b"])
        .arg(jar)
        .arg("-c")
        .arg(jar)
        .args(["-H", "Content-Type: application/json", "-d", body])
        .args(extra)
        .arg(format!("{parley}/api/{function}"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl's own resumable upload: `start`, then one streamed `upload, finalize`.
fn upload_direct(base: &str, path: &Path) -> Duration {
    upload_direct_paced(base, path, None)
}

/// [`upload_direct`] with curl sending at most `pace` bytes a second.
fn upload_direct_paced(base: &str, path: &Path, pace: Option<&str>) -> Duration {
    let size = std::fs::metadata(path).unwrap().len();
    let started = Instant::now();
    let start = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "-X", "POST"])
        .arg(format!("{base}/upload/v1beta/files"))
        .args(["-H", "x-goog-api-key: bench", "-H", "X-Goog-Upload-Protocol: resumable"])
        .args(["-H", "X-Goog-Upload-Command: start"])
        .args(["-H", &format!("X-Goog-Upload-Header-Content-Length: {size}")])
        .args(["-H", "X-Goog-Upload-Header-Content-Type: video/mp4"])
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
        .args(["-sS", "-f", "-o", "/dev/null", "--limit-rate", pace.unwrap_or("0")])
        .args(["-X", "POST", "-T"])
        .arg(path)
        .args(["-H", "X-Goog-Upload-Command: upload, finalize", "-H", "X-Goog-Upload-Offset: 0"])
        .arg(url)
        .status()
        .expect("curl");
    assert!(done.success());
    started.elapsed()
}

/// `size` bytes of MP4-looking content (an `ftyp` box first), different per `seed`.
fn write_file(path: &Path, size: u64, seed: u8) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let block: Vec<u8> =
        (0..MIB as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed).collect();
    for i in 0..size / MIB {
        let mut b = block.clone();
        if i == 0 {
            b[..12].copy_from_slice(b"\0\0\0\x18ftypmp42");
        }
        b[12] = i as u8;
        out.write_all(&b).unwrap();
    }
    out.flush().unwrap();
}

fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// A `VmHWM`-style figure of `/proc/{pid}/status`, KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(base: &str) {
    let addr = base.trim_start_matches("http://").to_string();
    for _ in 0..400 {
        if std::net::TcpStream::connect(&addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens at {base}");
}
