//! The `host-trainer` command line. Each subcommand lives in `commands/`.

use clap::{Parser, Subcommand};
use host_trainer::commands::{data, tokenize};

/// Kantor's host side: tokenize, train, distil, export, generate and evaluate.
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
    /// Corpus tools.
    #[command(subcommand)]
    Data(data::DataCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Tokenize(args) => tokenize::run(args),
        Command::Data(command) => data::run(command),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
