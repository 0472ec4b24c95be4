//! `mosaic sample`.

use std::path::PathBuf;

use anyhow::Context;

use mosaic::sample::{self, Preset};

#[derive(clap::Args)]
pub struct Args {
    /// Where to write: the archive (.zip), or with --platform liveswitch the recordings
    /// folder (it must not exist yet, or be empty).
    output: PathBuf,
    /// A built-in description.
    #[arg(long, value_enum, default_value_t = Preset::Demo, conflicts_with = "spec")]
    preset: Preset,
    /// A JSON description (see `mosaic::sample::ArchiveSpec`).
    #[arg(long, value_name = "FILE")]
    spec: Option<PathBuf>,
    /// What to write [default: opentok, or liveswitch for --preset liveswitch].
    #[arg(long, value_enum)]
    platform: Option<Platform>,
    /// LiveSwitch: how much the video lags the timestamps the logs give (videoDelay).
    #[arg(long, default_value_t = 90, value_name = "MS")]
    video_delay_ms: i64,
    /// Print the description used as JSON, and write nothing.
    #[arg(long)]
    print_spec: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Platform {
    /// An individual-stream archive (.zip).
    Opentok,
    /// A LiveSwitch recordings folder with its event.json.
    Liveswitch,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let spec = match &args.spec {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .map_err(|e| mosaic::Error::InvalidSpec(e.to_string()))
                .with_context(|| format!("reading {}", path.display()))?
        }
        None => args.preset.spec(),
    };
    if args.print_spec {
        println!("{}", serde_json::to_string_pretty(&spec)?);
        return Ok(0);
    }
    let platform = args.platform.unwrap_or(match args.preset {
        Preset::Liveswitch if args.spec.is_none() => Platform::Liveswitch,
        _ => Platform::Opentok,
    });
    let written = match platform {
        Platform::Opentok => sample::write_archive(&spec, &args.output),
        Platform::Liveswitch => sample::liveswitch::write_folder(
            &spec,
            &args.output,
            &sample::liveswitch::LiveswitchOptions {
                video_delay_ms: args.video_delay_ms,
                ..Default::default()
            },
        ),
    }
    .with_context(|| format!("writing sample {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} streams, {} media files)",
        args.output.display(),
        spec.streams.len(),
        written.files
    );
    Ok(0)
}
