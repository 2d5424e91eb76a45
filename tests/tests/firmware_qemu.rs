//! The real firmware on the emulated board (QEMU netduinoplus2, STM32F405)
//! sends, byte for byte, the MIDI stream the host computes with the same
//! engine, model and seed — and that stream is well-formed MIDI.

use std::path::Path;
use std::process::Command;

use kantor_engine::model::Model;
use kantor_firmware::sequencer::reference_stream;
use kantor_firmware::settings::{generator, MODEL, SESSION_CCM, SESSION_SRAM, TEST_TOKENS};
use kantor_tests::repo_root;
use midly::live::{LiveEvent, SystemRealtime};
use midly::MidiMessage;

/// Split a live MIDI byte stream (running status, interleaved real-time
/// bytes) into messages, each parsed by midly.
fn parse_stream(bytes: &[u8]) -> Vec<LiveEvent<'static>> {
    let mut events = Vec::new();
    let mut status: Option<u8> = None;
    let mut data: Vec<u8> = Vec::new();
    for &b in bytes {
        if b >= 0xF8 {
            events.push(LiveEvent::parse(&[b]).unwrap().to_static());
            continue;
        }
        if b >= 0x80 {
            assert!(data.is_empty(), "status byte {b:#x} cut a message short");
            status = Some(b);
            continue;
        }
        let s = status.expect("data byte without a status byte");
        data.push(b);
        let needed = if matches!(s & 0xF0, 0xC0 | 0xD0) {
            1
        } else {
            2
        };
        if data.len() == needed {
            let mut message = vec![s];
            message.append(&mut data);
            events.push(LiveEvent::parse(&message).unwrap().to_static());
        }
    }
    assert!(data.is_empty(), "stream ends inside a message");
    events
}

#[test]
#[ignore = "needs qemu-system-arm and the thumbv7em toolchain: tools/test.sh runs it (after tools/setup.sh)"]
fn the_board_plays_the_host_reference_byte_for_byte() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(repo_root().join("tools/firmware-qemu.sh"))
        .arg(out.path())
        .status()
        .expect("tools/firmware-qemu.sh runs");
    assert!(
        status.success(),
        "building or running the firmware in QEMU failed"
    );
    let board = std::fs::read(out.path().join("usart.bin")).unwrap();

    let model = Model::from_bytes(MODEL).unwrap();
    let (mut sram, mut ccm) = (vec![0u8; SESSION_SRAM], vec![0u8; SESSION_CCM]);
    let generator = generator(&model, &mut sram, &mut ccm).unwrap();
    let mut reference = Box::new(heapless::Vec::<u8, 65536>::new());
    let report = reference_stream(generator, TEST_TOKENS, &mut reference);

    if let Some(i) = board.iter().zip(reference.iter()).position(|(a, b)| a != b) {
        panic!(
            "board and host differ at byte {i}: board {:02x?}, host {:02x?}",
            &board[i..(i + 8).min(board.len())],
            &reference[i..(i + 8).min(reference.len())]
        );
    }
    assert_eq!(
        board.len(),
        reference.len(),
        "board sent {} bytes, host {}",
        board.len(),
        reference.len()
    );
    assert_eq!(board.len() as u32, report.bytes);
    assert_eq!(report.tokens, TEST_TOKENS);
    assert_eq!(
        report.ill_formed, 0,
        "grammar-constrained output is always well-formed"
    );

    // The same report on both sides.
    let text = std::fs::read_to_string(out.path().join("report.txt")).unwrap();
    let field = |name: &str| -> u32 {
        let key = format!("{name}=");
        let at = text
            .find(&key)
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
            + key.len();
        text[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(field("tokens"), report.tokens);
    assert_eq!(field("messages"), report.messages);
    assert_eq!(field("clocks"), report.clocks);
    assert_eq!(field("evictions"), report.evictions);
    assert_eq!(field("pieces"), report.pieces);
    assert!(report.pieces >= 1);

    // And it is MIDI: Start, clocks and balanced notes, Stop.
    let events = parse_stream(&board);
    assert_eq!(
        events.first(),
        Some(&LiveEvent::Realtime(SystemRealtime::Start))
    );
    assert_eq!(
        events.last(),
        Some(&LiveEvent::Realtime(SystemRealtime::Stop))
    );
    let clocks = events
        .iter()
        .filter(|e| **e == LiveEvent::Realtime(SystemRealtime::TimingClock))
        .count();
    assert_eq!(clocks as u32, report.clocks);
    let mut sounding = std::collections::HashMap::<(u8, u8), i32>::new();
    let mut notes = 0;
    for e in &events {
        if let LiveEvent::Midi { channel, message } = e {
            match message {
                MidiMessage::NoteOn { key, vel } => {
                    assert!(vel.as_int() > 0);
                    *sounding
                        .entry((channel.as_int(), key.as_int()))
                        .or_default() += 1;
                    notes += 1;
                }
                MidiMessage::NoteOff { key, .. } => {
                    let n = sounding
                        .entry((channel.as_int(), key.as_int()))
                        .or_default();
                    *n -= 1;
                    assert!(*n >= 0, "note-off without a note-on");
                }
                other => panic!("unexpected message {other:?}"),
            }
        }
    }
    assert!(notes > 20, "only {notes} notes");
    assert!(sounding.values().all(|&n| n == 0), "every note ends");
    let channels: std::collections::BTreeSet<u8> = sounding.keys().map(|k| k.0).collect();
    assert!(
        channels.len() >= 2,
        "voices play on separate channels: {channels:?}"
    );
    eprintln!(
        "{}",
        std::fs::read_to_string(Path::new(out.path()).join("report.txt")).unwrap()
    );
}
