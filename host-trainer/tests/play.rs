//! `host-trainer play` in real time through the recording port: what it
//! sends is checked against the same model and seed generated offline (the
//! notes decoded by the host's own REMI decoder), the MIDI clock against the
//! model's tempo, and the jitter figures against the recorded timestamps.
//! Timing bounds are loose sanity bounds only: this is not a benchmark.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use host_trainer::generate::{generate_engine, to_piece, GenerateOptions};
use kantor_engine::sampler::SamplerConfig;
use kantor_engine::stream::voice_channel;
use kantor_engine::vocab::tempo_micros;

mod common;
use common::*;

/// (channel, key, velocity) of the note-ons at each grid tick.
type NotesByTick = BTreeMap<u32, Vec<(u8, u8, u8)>>;

const MODEL: &str = "firmware/model/student.safetensors";
const SEED: u64 = 5;

#[test]
fn play_sends_the_scheduled_notes_and_clock_in_real_time() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("played.txt");
    let seed = SEED.to_string();
    let out = host_trainer(&[
        "play",
        "--model",
        MODEL,
        "--record",
        record.to_str().unwrap(),
        "--seconds",
        "3",
        "--seed",
        &seed,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let log =
        host_trainer::midi_port::parse_log(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(report["dropped_notes"], 0);
    assert_eq!(report["ill_formed"], 0);
    assert_eq!(report["interrupted"], false);

    // Start first, Stop last, clocks in between.
    assert_eq!(log.first().unwrap().1, [0xfa]);
    assert_eq!(log.last().unwrap().1, [0xfc]);
    let clocks = log.iter().filter(|m| m.1 == [0xf8]).count();
    assert_eq!(clocks as u64, report["clocks"].as_u64().unwrap());
    assert!(
        clocks >= 48,
        "{clocks} clocks in 3 s (40 BPM, the slowest tempo, gives 72)"
    );

    // Each note message goes out right after the clock of its grid tick:
    // after 2·tick clocks (24 per quarter note, 12 grid ticks per quarter).
    let mut clocks_before = 0u64;
    let mut played = NotesByTick::new();
    let mut last_tick = 0u32;
    let mut sounding: HashMap<(u8, u8), bool> = HashMap::new();
    let (mut ons, mut offs) = (0u64, 0u64);
    for (_, bytes) in &log[1..log.len() - 1] {
        match bytes[..] {
            [0xf8] => clocks_before += 1,
            [status, key, velocity] if status & 0xe0 == 0x80 => {
                assert_eq!(clocks_before % 2, 0, "a note between grid ticks");
                let tick = (clocks_before / 2) as u32;
                assert!(tick >= last_tick, "out of scheduled order");
                last_tick = tick;
                let channel = status & 0x0f;
                let on = status & 0xf0 == 0x90;
                let was = sounding.insert((channel, key), on).unwrap_or(false);
                if on {
                    assert!(!was, "note-on of a sounding key {channel}/{key} at {tick}");
                    played
                        .entry(tick)
                        .or_default()
                        .push((channel, key, velocity));
                    ons += 1;
                } else {
                    assert!(was, "note-off of a silent key {channel}/{key} at {tick}");
                    offs += 1;
                }
            }
            _ => panic!("unexpected message {bytes:02x?}"),
        }
    }
    assert!(sounding.values().all(|&on| !on), "notes left sounding");
    assert_eq!(ons, offs);
    assert_eq!(ons, report["note_ons"].as_u64().unwrap());
    assert!(ons >= 4, "{ons} notes");

    // The same notes at the same ticks as the same model and seed generate offline.
    let bytes = std::fs::read(repo().join(MODEL)).unwrap();
    let bpe = host_trainer::export::read_bpe(&bytes).unwrap();
    let options = GenerateOptions {
        sampler: SamplerConfig {
            temperature: 0.8,
            top_k: 50,
            top_p: 0.95,
        },
        seed: SEED,
        bars: 1000,
        max_tokens: 2000,
        constrained: true,
        stop_at_eos: true,
        ..GenerateOptions::default()
    };
    let tokens = generate_engine(&bytes, &[], &options).unwrap();
    let piece = to_piece(&tokens, &bpe).unwrap().piece;
    let mut expected = NotesByTick::new();
    for n in &piece.notes {
        expected
            .entry(n.onset)
            .or_default()
            .push((voice_channel(n.voice), n.pitch, n.velocity));
    }
    // The last tick with note-ons may have been cut off when generation stopped.
    let last_on = *played.keys().last().unwrap();
    let horizon = last_on.min(piece.end_tick());
    let upto = |m: &NotesByTick| -> NotesByTick {
        m.range(..horizon)
            .map(|(&t, v)| {
                let mut v = v.clone();
                v.sort_unstable();
                (t, v)
            })
            .collect()
    };
    let compared = upto(&played);
    assert!(
        compared.len() >= 4,
        "only {} ticks with notes to compare",
        compared.len()
    );
    assert_eq!(compared, upto(&expected));

    // The clock follows the model's tempo: clock k is due at the sum of the
    // clock periods (a quarter note / 24) before it. The recorded instants
    // are compared with that; the player's reported jitter must cover them.
    let tempo_at = |tick: u32| {
        piece
            .tempos
            .iter()
            .take_while(|t| t.tick <= tick)
            .last()
            .map_or(500_000, |t| tempo_micros(t.tempo))
    };
    for t in report["tempos"].as_array().unwrap() {
        let tick = t["tick"].as_u64().unwrap() as u32;
        if tick < horizon {
            assert_eq!(
                t["micros_per_quarter"].as_u64().unwrap(),
                u64::from(tempo_at(tick))
            );
        }
    }
    let mut due = 0.0f64;
    let mut clock = 0u64;
    let (mut late_sum, mut late_max, mut measured) = (0.0f64, 0.0f64, 0u64);
    // Start is the origin; Stop follows the last note-off at once, with no clock deadline.
    for (at, bytes) in &log[1..log.len() - 1] {
        let late = at - due;
        assert!(late > -0.001, "sent {:.1} ms early", -late * 1e3);
        late_sum += late;
        late_max = late_max.max(late);
        measured += 1;
        if bytes[..] == [0xf8] {
            due += f64::from(tempo_at((clock / 2) as u32)) / 24.0 / 1e6;
            clock += 1;
        }
    }
    let jitter = &report["jitter"];
    let (mean_ms, max_ms) = (
        jitter["mean_ms"].as_f64().unwrap(),
        jitter["max_ms"].as_f64().unwrap(),
    );
    assert_eq!(jitter["messages"].as_u64().unwrap(), log.len() as u64);
    assert!(mean_ms >= 0.0 && max_ms >= mean_ms, "{jitter}");
    assert!(
        max_ms + 0.5 >= late_max * 1e3,
        "reported max {max_ms:.3} ms, recorded {:.3} ms",
        late_max * 1e3
    );
    assert!(
        (late_sum / measured as f64) * 1e3 < 200.0,
        "mean lateness {:.1} ms",
        late_sum / measured as f64 * 1e3
    );
    assert!(mean_ms < 200.0, "{jitter}");
    eprintln!(
        "{clocks} clocks, {ons} notes ({} ticks compared with offline generation); jitter mean {mean_ms:.3} ms, max {max_ms:.3} ms; recorded mean {:.3} ms, max {:.3} ms",
        compared.len(),
        late_sum / measured as f64 * 1e3,
        late_max * 1e3
    );
}

#[test]
fn play_without_a_model_or_to_a_missing_port_is_a_clear_error() {
    for args in [
        &["play", "--record", "/tmp/never-written.txt"][..],
        &[
            "play",
            "--model",
            MODEL,
            "--port",
            "no such port 1f3a",
            "--seconds",
            "1",
        ][..],
        &[
            "play",
            "--model",
            MODEL,
            "--record",
            "x.txt",
            "--seconds",
            "-1",
        ][..],
    ] {
        let out = host_trainer(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    assert!(!Path::new("/tmp/never-written.txt").exists());
}
