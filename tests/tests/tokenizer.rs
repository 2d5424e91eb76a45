//! The tokenizer on real data: MIDI → REMI → BPE → REMI → notes is lossless
//! beyond the documented grid, on the Bach chorales and on files from other tools.

use host_trainer::bpe::Bpe;
use host_trainer::corpus::{midi_files, Corpus, LoadOptions, Split};
use host_trainer::data::round_trip::round_trip;
use host_trainer::midi::{read_midi, read_piece, write_midi, ReadOptions};
use host_trainer::remi;
use kantor_tests::{chorales_dir, jsb_json, unseen_midi_dir};

fn learned_bpe(dir: &std::path::Path, vocab_size: usize) -> Bpe {
    let corpus = Corpus::load(dir, LoadOptions::default()).unwrap();
    let seqs: Vec<Vec<u16>> = corpus
        .train
        .iter()
        .map(|e| remi::encode_ids(&e.piece))
        .collect();
    Bpe::train(&seqs, vocab_size)
}

fn assert_lossless(dir: &std::path::Path, bpe: &Bpe) -> usize {
    let mut notes = 0;
    for path in midi_files(dir).unwrap() {
        let score = read_midi(&std::fs::read(&path).unwrap(), ReadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = round_trip(&score, bpe).unwrap();
        assert_eq!(
            r.mismatched,
            0,
            "{}: {:?}",
            path.display(),
            r.first_difference
        );
        assert_eq!(r.decode_errors, 0, "{}", path.display());
        assert!(r.bpe_tokens <= r.tokens);
        notes += r.notes;
    }
    notes
}

#[test]
fn every_bach_chorale_round_trips_through_bpe_1024() {
    let bpe = learned_bpe(&chorales_dir(), 1024);
    assert_eq!(bpe.vocab_size(), 1024);
    let notes = assert_lossless(&chorales_dir(), &bpe);
    assert!(notes > 100_000, "{notes}");
}

#[test]
fn midi_from_other_tools_round_trips_with_chorale_bpe() {
    let bpe = learned_bpe(&chorales_dir(), 512);
    let notes = assert_lossless(&unseen_midi_dir(), &bpe);
    assert!(notes > 10_000, "{notes}");
}

#[test]
fn written_midi_reads_back_to_the_same_piece() {
    for path in midi_files(&chorales_dir()).unwrap().iter().step_by(17) {
        let piece = read_piece(&std::fs::read(path).unwrap(), ReadOptions::default()).unwrap();
        let again = read_piece(&write_midi(&piece), ReadOptions::default()).unwrap();
        assert_eq!(again.notes, piece.notes, "{}", path.display());
        assert_eq!(again.tempos, piece.tempos);
        assert_eq!(again.meters, piece.meters);
        for (a, b) in again.voices.iter().zip(&piece.voices) {
            assert_eq!((a.channel, a.program), (b.channel, b.program));
            if b.name.is_some() {
                assert_eq!(a.name, b.name);
            }
        }
    }
}

#[test]
fn jsb_loads_with_the_official_split_and_round_trips() {
    let corpus = Corpus::load(&jsb_json(), LoadOptions::default()).unwrap();
    assert_eq!(
        (corpus.train.len(), corpus.valid.len(), corpus.test.len()),
        (229, 76, 77)
    );
    for e in corpus.split(Split::Valid) {
        let decoded = remi::decode_ids(&remi::encode_ids(&e.piece));
        assert!(decoded.errors.is_empty());
        assert_eq!(decoded.piece.notes, e.piece.notes, "{}", e.name);
    }
}

#[test]
fn a_directory_with_bad_files_loads_the_good_ones_and_names_the_bad() {
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<_> = midi_files(&chorales_dir())
        .unwrap()
        .into_iter()
        .take(12)
        .collect();
    for p in &good {
        std::fs::copy(p, dir.path().join(p.file_name().unwrap())).unwrap();
    }
    let bytes = std::fs::read(&good[0]).unwrap();
    std::fs::write(dir.path().join("truncated.mid"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.path().join("empty.mid"), b"").unwrap();
    std::fs::write(dir.path().join("text.mid"), b"MThd not really").unwrap();
    let corpus = Corpus::load(dir.path(), LoadOptions::default()).unwrap();
    assert_eq!(corpus.len(), 12);
    let mut bad: Vec<String> = corpus
        .failures
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    bad.sort();
    assert_eq!(bad, ["empty.mid", "text.mid", "truncated.mid"]);
    let truncated = corpus
        .failures
        .iter()
        .find(|f| f.path.ends_with("truncated.mid"))
        .unwrap();
    assert!(truncated.error.contains("truncated"), "{}", truncated.error);
}

#[test]
fn an_empty_or_missing_corpus_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Corpus::load(dir.path(), LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("no MIDI files"), "{err}");
    let err = Corpus::load(&dir.path().join("nope"), LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}
