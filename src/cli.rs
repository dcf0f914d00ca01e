//! Command line (the public contract of CONFIG.md): run, `-t`, `-s`, and
//! `cert self-signed`. Maps every outcome to an exit code.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use crate::config;
use crate::runtime::control::{self, EXIT_CONFIG, EXIT_RUNTIME};
use crate::runtime::generation::Generation;
use crate::tls::{self, TlsShared};

#[derive(Parser, Debug)]
#[command(
    name = "torii",
    version,
    about = "A reverse proxy that reloads without dropping a connection"
)]
pub struct Cli {
    /// Configuration file [default: $TORII_CONFIG, else /etc/torii/torii.toml]
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Test the configuration (parse, validate, load certificates, resolve upstreams) and exit
    #[arg(short = 't', long = "test")]
    pub test: bool,
    /// Send a signal to the running torii named by global.pid_file
    #[arg(short = 's', long = "signal", value_enum, value_name = "SIGNAL")]
    pub signal: Option<SignalName>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalName {
    Reload,
    Stop,
    Quit,
    Reopen,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Certificate helpers
    Cert {
        #[command(subcommand)]
        what: CertCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Write DIR/server.key (mode 0600) and DIR/server.crt (ECDSA P-256, SANs = the hosts)
    SelfSigned {
        /// Host name or IP address to certify (repeatable)
        #[arg(long = "host", value_name = "NAME", required = true, num_args = 1..)]
        host: Vec<String>,
        /// Directory to write server.key and server.crt into
        #[arg(long = "out", value_name = "DIR")]
        out: PathBuf,
    },
}

fn config_path(cli: &Cli) -> PathBuf {
    if let Some(c) = &cli.config {
        return c.clone();
    }
    match std::env::var_os("TORII_CONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/etc/torii/torii.toml"),
    }
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    if let Some(Command::Cert {
        what: CertCommand::SelfSigned { host, out },
    }) = &cli.command
    {
        return match tls::write_self_signed(host, out) {
            Ok(()) => {
                println!(
                    "torii: wrote {} and {}",
                    out.join("server.key").display(),
                    out.join("server.crt").display()
                );
                0
            }
            Err(e) => {
                eprintln!("torii: {e}");
                EXIT_RUNTIME
            }
        };
    }
    let path = config_path(&cli);
    if cli.test {
        return test_config(&path);
    }
    if let Some(sig) = cli.signal {
        return send_signal(&path, sig);
    }
    control::run(&path)
}

/// Warnings as `FILE:LINE:COL: warning: message`, errors' layout.
fn print_warnings(warnings: &[config::ConfigError]) {
    for w in warnings {
        eprintln!(
            "{}:{}:{}: warning: {}",
            w.file.display(),
            w.pos.line,
            w.pos.col,
            w.message
        );
    }
}

/// `torii -t`: everything a start would check, binding nothing.
fn test_config(path: &Path) -> i32 {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(errors) => {
            control::print_errors(&errors);
            eprintln!("torii: configuration {} test failed", path.display());
            return EXIT_CONFIG;
        }
    };
    print_warnings(&loaded.warnings);
    let tls = match TlsShared::new() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("torii: {e}");
            return EXIT_RUNTIME;
        }
    };
    let workers = loaded.config.global.workers;
    match Generation::build(0, loaded.config, None, &tls, workers, false) {
        Ok(generation) => {
            print_warnings(&generation.warnings);
            println!("torii: configuration {} test is successful", path.display());
            0
        }
        Err(errors) => {
            control::print_errors(&errors);
            eprintln!("torii: configuration {} test failed", path.display());
            EXIT_CONFIG
        }
    }
}

/// `torii -s`: signals the process named in `global.pid_file`.
fn send_signal(path: &Path, sig: SignalName) -> i32 {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(errors) => {
            control::print_errors(&errors);
            return EXIT_CONFIG;
        }
    };
    let Some(pid_file) = loaded.config.global.pid_file else {
        eprintln!(
            "torii: {} sets no global.pid_file: cannot find the running process",
            path.display()
        );
        return EXIT_RUNTIME;
    };
    let text = match std::fs::read_to_string(&pid_file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("torii: cannot read {}: {e}", pid_file.display());
            return EXIT_RUNTIME;
        }
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        eprintln!("torii: {} does not hold a process id", pid_file.display());
        return EXIT_RUNTIME;
    };
    let signal = match sig {
        SignalName::Reload => Signal::SIGHUP,
        SignalName::Stop => Signal::SIGTERM,
        SignalName::Quit => Signal::SIGQUIT,
        SignalName::Reopen => Signal::SIGUSR1,
    };
    match kill(Pid::from_raw(pid), signal) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("torii: cannot signal process {pid}: {e}");
            EXIT_RUNTIME
        }
    }
}
