//! The `host-trainer` command line. Each subcommand lives in `commands/`.

use clap::{Parser, Subcommand};
use host_trainer::commands::{
    compare, data, distill, eval, export, generate, jsb, play, render, tokenize, train,
};

/// Kantor's host side: tokenize, train, distil, export, generate, render, play and evaluate.
#[derive(Debug, Parser)]
#[command(name = "host-trainer", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the REMI tokens of MIDI files, or check the lossless round trip (--roundtrip).
    Tokenize(tokenize::TokenizeArgs),
    /// Train a model (default: the student on the bundled chorales), export it and write a sample.
    Train(train::TrainArgs),
    /// Train a small student on a teacher's soft targets; compare with no distillation.
    Distill(distill::DistillArgs),
    /// Quantize a run's weights for the engine; compare float and quantized perplexity.
    Export(export::ExportArgs),
    /// Continue a MIDI prompt (or start from nothing) and write MIDI.
    Generate(generate::GenerateArgs),
    /// Render a MIDI file as audio (WAV, with a SoundFont) and a piano roll (PNG).
    Render(render::RenderArgs),
    /// Generate and play live to a MIDI port (note-on/off and MIDI clock), as a keyboard would.
    Play(play::PlayArgs),
    /// Perplexity on held-out data and metrics of generated music.
    Eval(eval::EvalArgs),
    /// The comparative study: LSTM, VAEs, VQ-VAE, GAN, diffusion beside the Transformer.
    Compare(compare::CompareArgs),
    /// The JSB Chorales benchmark in its published setting (SATB raster, note-wise NLL), trained with checkpoints.
    Jsb(jsb::JsbArgs),
    /// Corpus tools.
    #[command(subcommand)]
    Data(data::DataCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Tokenize(args) => tokenize::run(args),
        Command::Data(command) => data::run(command),
        Command::Train(args) => train::run(args),
        Command::Distill(args) => distill::run(args),
        Command::Export(args) => export::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Render(args) => render::run(args),
        Command::Play(args) => play::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Jsb(args) => jsb::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
