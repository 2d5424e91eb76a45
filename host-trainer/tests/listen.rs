//! Hearing and seeing a piece, as a user does it: `generate --wav --png` and
//! `render` write a WAV (decoded here with hound and measured against the
//! MIDI file, read here with midly) and a piano roll (decoded with png);
//! hostile input gives a clear error and no file.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use midly::{MetaMessage, MidiMessage, Smf, Timing, TrackEventKind};

mod common;
use common::*;

/// The tests that render need a SoundFont; there is no silent pass without one.
fn require_soundfont() {
    assert!(
        host_trainer::render::installed_soundfont().is_some(),
        "no General MIDI SoundFont installed (looked for {}): run tools/setup.sh, which installs {}",
        host_trainer::render::SOUNDFONT_PATHS.join(", "),
        host_trainer::render::SOUNDFONT_PACKAGE
    );
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Notes of a MIDI file as (start, end) in seconds, read with midly alone.
fn note_spans(bytes: &[u8]) -> Vec<(f64, f64)> {
    let smf = Smf::parse(bytes).unwrap();
    let Timing::Metrical(tpq) = smf.header.timing else {
        panic!("metrical timing expected");
    };
    let tpq = f64::from(tpq.as_int());
    let mut tempos: Vec<(u64, f64)> = Vec::new();
    let mut ons: HashMap<(usize, u8, u8), VecDeque<u64>> = HashMap::new();
    let mut spans_ticks: Vec<(u64, u64)> = Vec::new();
    for (t, track) in smf.tracks.iter().enumerate() {
        let mut tick = 0u64;
        for event in track {
            tick += u64::from(event.delta.as_int());
            match event.kind {
                TrackEventKind::Meta(MetaMessage::Tempo(us)) => {
                    tempos.push((tick, f64::from(us.as_int())))
                }
                TrackEventKind::Midi { channel, message } => {
                    let c = channel.as_int();
                    match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                            ons.entry((t, c, key.as_int())).or_default().push_back(tick)
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            if let Some(start) = ons
                                .get_mut(&(t, c, key.as_int()))
                                .and_then(|q| q.pop_front())
                            {
                                spans_ticks.push((start, tick));
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
    }
    tempos.sort_by_key(|t| t.0);
    let seconds = |tick: u64| {
        let (mut at, mut us, mut s) = (0u64, 500_000.0, 0.0);
        for &(t, u) in tempos.iter().take_while(|t| t.0 <= tick) {
            s += (t - at) as f64 / tpq * us / 1e6;
            at = t;
            us = u;
        }
        s + (tick - at) as f64 / tpq * us / 1e6
    };
    spans_ticks
        .iter()
        .map(|&(a, b)| (seconds(a), seconds(b)))
        .collect()
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    (sum / samples.len().max(1) as f64).sqrt() / 32768.0
}

/// Check a rendered WAV against its MIDI file: format, duration, sound
/// where the notes sound, no clipping.
fn check_wav(wav: &Path, midi: &Path) {
    let mut reader = hound::WavReader::open(wav).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (
            spec.sample_rate,
            spec.channels,
            spec.bits_per_sample,
            spec.sample_format
        ),
        (44_100, 2, 16, hound::SampleFormat::Int)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let frames = samples.len() / 2;
    let wav_seconds = frames as f64 / 44_100.0;

    let spans = note_spans(&std::fs::read(midi).unwrap());
    assert!(!spans.is_empty());
    let midi_seconds = spans.iter().map(|s| s.1).fold(0.0, f64::max);
    assert!(
        (wav_seconds - midi_seconds).abs() < 1.0,
        "WAV {wav_seconds:.2} s vs MIDI {midi_seconds:.2} s"
    );

    let clipped = samples
        .iter()
        .filter(|&&s| s == i16::MAX || s == i16::MIN)
        .count();
    assert_eq!(clipped, 0, "clipped samples");

    // Every quarter second in which a note sounds throughout is far above
    // silence (-40 dBFS); the music as a whole is louder still.
    let window = 0.25;
    let mut checked = 0;
    let mut t = 0.0;
    while t + window <= midi_seconds {
        if spans.iter().any(|&(a, b)| a <= t && b >= t + window) {
            let from = (t * 44_100.0) as usize * 2;
            let to = ((t + window) * 44_100.0) as usize * 2;
            let level = rms(&samples[from..to.min(samples.len())]);
            assert!(level > 0.01, "near silence ({level:.4} RMS) at {t:.2} s");
            checked += 1;
        }
        t += window;
    }
    assert!(checked > 0);
    let music = &samples[..((midi_seconds * 44_100.0) as usize * 2).min(samples.len())];
    assert!(rms(music) > 0.05, "RMS {:.4}", rms(music));
}

/// Check a piano roll: it decodes, has the documented size, and shows at
/// least one saturated colour per voice.
fn check_png(png_path: &Path, voices: usize) {
    let decoder = png::Decoder::new(std::fs::File::open(png_path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), host_trainer::plot::ROLL_SIZE);
    let channels = info.color_type.samples();
    let mut colours = std::collections::HashSet::new();
    for px in buf[..info.buffer_size()].chunks(channels) {
        let (r, g, b) = (i32::from(px[0]), i32::from(px[1]), i32::from(px[2]));
        if r.max(g).max(b) - r.min(g).min(b) > 60 {
            colours.insert((r, g, b));
        }
    }
    assert!(
        colours.len() >= voices,
        "{} saturated colours for {voices} voices",
        colours.len()
    );
}

fn voices_of(midi: &Path) -> usize {
    let piece =
        host_trainer::midi::read_piece(&std::fs::read(midi).unwrap(), Default::default()).unwrap();
    piece.voice_count()
}

#[test]
fn generate_and_render_write_audio_and_a_piano_roll() {
    require_soundfont();
    let dir = tempfile::tempdir().unwrap();
    let midi = dir.path().join("piece.mid");
    let (wav, png) = (dir.path().join("piece.wav"), dir.path().join("piece.png"));
    let out = ok(&host_trainer(&[
        "generate",
        "--model",
        "firmware/model/student.safetensors",
        "--bars",
        "8",
        "--seed",
        "7",
        "--out",
        midi.to_str().unwrap(),
        "--wav",
        wav.to_str().unwrap(),
        "--png",
        png.to_str().unwrap(),
    ]));
    assert!(out.contains("44.1 kHz 16-bit stereo"), "{out}");
    check_wav(&wav, &midi);
    check_png(&png, voices_of(&midi));

    // `render` on a chorale from the corpus, with another instrument set.
    let chorale = repo().join("data/bach-chorales-midi/bach_bwv10.7.mid");
    let (wav2, png2) = (
        dir.path().join("chorale.wav"),
        dir.path().join("chorale.png"),
    );
    ok(&host_trainer(&[
        "render",
        chorale.to_str().unwrap(),
        "--wav",
        wav2.to_str().unwrap(),
        "--png",
        png2.to_str().unwrap(),
        "--instruments",
        "strings",
    ]));
    check_wav(&wav2, &chorale);
    check_png(&png2, voices_of(&chorale));
    assert_eq!(
        files_in(dir.path()),
        [
            "chorale.png",
            "chorale.wav",
            "piece.mid",
            "piece.png",
            "piece.wav"
        ]
    );
}

#[test]
fn render_of_hostile_or_empty_midi_is_a_clear_error_and_writes_nothing() {
    require_soundfont();
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.mid");
    std::fs::write(&garbage, b"this is not a MIDI file at all").unwrap();
    let truncated = dir.path().join("truncated.mid");
    let whole = std::fs::read(repo().join("tests/fixtures/music21-midi/test01.mid")).unwrap();
    std::fs::write(&truncated, &whole[..whole.len() / 2]).unwrap();
    // A valid file with a tempo and no notes.
    let empty = dir.path().join("empty.mid");
    let silent = host_trainer::piece::Piece::new(Vec::new(), Vec::new(), Vec::new(), Vec::new());
    std::fs::write(&empty, host_trainer::midi::write_midi(&silent)).unwrap();
    let (wav, png) = (dir.path().join("out.wav"), dir.path().join("out.png"));
    for (input, expected) in [
        (&garbage, "garbage.mid"),
        (&truncated, "truncated"),
        (&empty, "no notes"),
    ] {
        let err = failure(&host_trainer(&[
            "render",
            input.to_str().unwrap(),
            "--wav",
            wav.to_str().unwrap(),
            "--png",
            png.to_str().unwrap(),
        ]));
        assert!(err.contains(expected), "{err}");
    }
    // A SoundFont that is not one, or is not there, names the problem.
    let chorale = repo().join("data/bach-chorales-midi/bach_bwv10.7.mid");
    let err = failure(&host_trainer(&[
        "render",
        chorale.to_str().unwrap(),
        "--wav",
        wav.to_str().unwrap(),
        "--soundfont",
        garbage.to_str().unwrap(),
    ]));
    assert!(err.contains("not a usable SoundFont"), "{err}");
    let err = failure(&host_trainer(&[
        "render",
        chorale.to_str().unwrap(),
        "--wav",
        wav.to_str().unwrap(),
        "--soundfont",
        "/nonexistent/GM.sf2",
    ]));
    assert!(err.contains("--soundfont"), "{err}");
    let err = failure(&host_trainer(&["render", chorale.to_str().unwrap()]));
    assert!(err.contains("--wav"), "{err}");
    assert_eq!(
        files_in(dir.path()),
        ["empty.mid", "garbage.mid", "truncated.mid"],
        "no output, no temporary file left"
    );
}
