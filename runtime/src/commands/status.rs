//! `pairos status`: what the running node says about itself and its peer.

use crate::cli::StatusArgs;
use crate::pair::status;
use crate::Exit;

pub fn run(args: &StatusArgs) -> anyhow::Result<Exit> {
    let s = status::read(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", status::render(&s));
    }
    Ok(Exit::Success)
}
