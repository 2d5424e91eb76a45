//! The web door in a real browser: `tools/web-build.sh` builds the page and
//! the engine's WebAssembly module, `tools/web-serve.sh` serves it on
//! 127.0.0.1, and headless Chromium loads it with a fixed seed. The MIDI file
//! the page offers must equal, byte for byte, the Rust example's for the same
//! model, tokens and seed; the piano roll must be drawn; no error may reach
//! the console; nothing may be fetched from elsewhere. A corrupt dropped-in model is refused with the engine's
//! message. Prints the .wasm size and the page's tokens/s.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kantor_tests::browser::Browser;
use kantor_tests::{repo_root, rust_example_midi, student_model};

const TOKENS: u32 = 600;
const SEED: u64 = 7;

/// `tools/web-serve.sh` on a free port, stopped on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(dir: &Path) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(repo_root().join("tools/web-serve.sh"))
            .arg(port.to_string())
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tools/web-serve.sh starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pixels of the canvas region of `png` that differ from the roll's
/// background, and how many distinct colours they have.
fn drawn_pixels(png: &[u8], rect: &serde_json::Value) -> (usize, usize, usize) {
    let decoder = png::Decoder::new(png);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let get = |k: &str| rect[k].as_f64().unwrap().round() as usize;
    let (x0, y0, w, h) = (get("x"), get("y"), get("width"), get("height"));
    let mut drawn = 0;
    let mut colours = std::collections::HashSet::new();
    for y in y0 + 2..(y0 + h - 2).min(info.height as usize) {
        for x in x0 + 2..(x0 + w - 2).min(info.width as usize) {
            let at = (y * info.width as usize + x) * channels;
            let rgb = (buf[at], buf[at + 1], buf[at + 2]);
            if rgb != (0x0d, 0x0f, 0x13) {
                drawn += 1;
                colours.insert(rgb);
            }
        }
    }
    (drawn, colours.len(), w * h)
}

#[test]
#[ignore = "needs chromium and the wasm32-unknown-unknown target: tools/test.sh runs it (after tools/setup.sh)"]
fn the_page_plays_the_host_engines_notes_in_a_real_browser() {
    let work = tempfile::tempdir().unwrap();
    let page = work.path().join("page");
    let status = Command::new(repo_root().join("tools/web-build.sh"))
        .arg(&page)
        .stdout(Stdio::null())
        .status()
        .expect("tools/web-build.sh runs");
    assert!(status.success(), "building the page failed");
    let wasm_bytes = std::fs::metadata(page.join("kantor.wasm")).unwrap().len();
    let reference = rust_example_midi(&student_model(), TOKENS, SEED);

    let server = Server::start(&page);
    let mut browser = Browser::launch(1280, 860).expect("headless Chromium starts");
    let url = format!(
        "http://127.0.0.1:{}/?seed={SEED}&tokens={TOKENS}&autorun=1",
        server.port
    );
    browser.navigate(&url).unwrap();
    let state = browser
        .wait_for(
            "document.body && ['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
            Duration::from_secs(90),
        )
        .unwrap();
    let status_text = browser
        .eval("document.getElementById('status').textContent")
        .unwrap();
    assert_eq!(state, "done", "the page says: {status_text}");

    // The notes: the file behind the page's download link.
    let midi: Vec<u8> = serde_json::from_value(
        browser
            .eval(
                "(async () => Array.from(new Uint8Array(await (await \
                 fetch(document.getElementById('download').href)).arrayBuffer())))()",
            )
            .unwrap(),
    )
    .unwrap();
    if let Some(i) = midi.iter().zip(&reference).position(|(a, b)| a != b) {
        panic!(
            "page and Rust example differ at byte {i}: page {:02x?}, Rust {:02x?}",
            &midi[i..(i + 8).min(midi.len())],
            &reference[i..(i + 8).min(reference.len())]
        );
    }
    assert_eq!(midi.len(), reference.len());
    let smf = midly::Smf::parse(&reference).unwrap();
    let note_ons = smf.tracks[0]
        .iter()
        .filter(|e| {
            matches!(e.kind, midly::TrackEventKind::Midi { message: midly::MidiMessage::NoteOn { vel, .. }, .. } if vel > 0)
        })
        .count();
    let shown = |browser: &mut Browser, id: &str| -> String {
        browser
            .eval(&format!("document.getElementById('{id}').textContent"))
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(shown(&mut browser, "notes"), note_ons.to_string());
    assert_eq!(shown(&mut browser, "tokens"), TOKENS.to_string());
    assert_eq!(shown(&mut browser, "wasm-size"), wasm_bytes.to_string());
    let speed: u64 = shown(&mut browser, "speed").parse().unwrap();
    assert!(speed > 0, "the page measured no speed");

    // The roll: drawn on the canvas, in several colours.
    let rect = browser
        .eval("(() => { const r = document.getElementById('roll').getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300)); // a few animation frames: the playhead moves
    let png = browser.screenshot().unwrap();
    let (drawn, colours, area) = drawn_pixels(&png, &rect);
    let shot = repo_root().join("target/web-page.png");
    let _ = std::fs::write(&shot, &png);
    assert!(
        drawn * 100 > area && colours >= 4,
        "the roll looks blank: {drawn} of {area} pixels drawn, {colours} colours ({})",
        shot.display()
    );
    assert_eq!(browser.console_errors, Vec::<String>::new());
    // Offline: everything came from the page's own server (or the page's own blobs).
    let own = format!("http://127.0.0.1:{}/", server.port);
    assert!(browser.requests.iter().any(|r| r.ends_with("/kantor.wasm")));
    let foreign: Vec<&String> = browser
        .requests
        .iter()
        .filter(|r| !r.starts_with(&own) && !r.starts_with("blob:") && !r.starts_with("data:"))
        .collect();
    assert!(
        foreign.is_empty(),
        "requests beyond the page's server: {foreign:?}"
    );

    // A corrupt model dropped in: refused with the engine's message, the shipped one kept.
    let bad = work.path().join("model.safetensors");
    let mut bytes = std::fs::read(student_model()).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&bad, bytes).unwrap();
    browser.set_file_input("#model-file", &[bad]).unwrap();
    let refused = browser
        .wait_for(
            "document.body.dataset.state === 'error' && document.getElementById('status').textContent",
            Duration::from_secs(20),
        )
        .unwrap();
    assert!(
        refused
            .as_str()
            .unwrap()
            .contains("model.safetensors: kantor_memory_required: not a valid Kantor model"),
        "{refused}"
    );
    assert_eq!(
        browser.console_errors.len(),
        1,
        "{:?}",
        browser.console_errors
    );
    assert!(!browser
        .eval("document.getElementById('generate').disabled")
        .unwrap()
        .as_bool()
        .unwrap());

    println!(
        "web page: {TOKENS} tokens, seed {SEED}: MIDI identical to the Rust example ({} bytes, {note_ons} notes); \
         .wasm {wasm_bytes} bytes; {speed} tokens/s in headless Chromium; screenshot {}",
        midi.len(),
        shot.display()
    );
}
