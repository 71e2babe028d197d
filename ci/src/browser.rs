//! Headless Chromium in a lab namespace, driven through chromedriver (WebDriver) with
//! fantoccini: the console's page as an operator's browser sees it. Chromium trusts exactly one
//! TLS key (`--ignore-certificate-errors-spki-list`), the pair's console key, so a page that
//! loads proves the node that answered presents the pair's certificate.
//!
//! The calls are synchronous (a tokio runtime of its own inside), so a test can interleave them
//! with faults.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use pairos_host::Child;
use serde_json::{json, Value};

use crate::error::io;
use crate::{LabError, Netns};

const DRIVER_PORT: u16 = 9515;

/// WebDriver's codes for the keys a keyboard user needs (fantoccini's `Key`), for [`LabBrowser::press`].
pub const TAB: &str = "\u{e004}";
pub const ENTER: &str = "\u{e007}";
pub const ESCAPE: &str = "\u{e00c}";

#[derive(Debug)]
pub struct LabBrowser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    /// Screenshots go here, numbered in order.
    shots: PathBuf,
    taken: usize,
    _driver: Child,
}

fn setup(what: &str) -> impl FnOnce(fantoccini::error::CmdError) -> LabError + '_ {
    move |e| LabError::Setup(format!("browser: {what}: {e}"))
}

impl LabBrowser {
    /// Starts chromedriver in `ns` and a headless Chromium through it that trusts only the TLS
    /// key whose SPKI SHA-256 is `spki_base64`. Its logs and screenshots go under `dir`.
    pub fn start(ns: &Netns, dir: &Path, spki_base64: &str) -> Result<LabBrowser, LabError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let driver = ns
            .cmd("chromedriver")
            .args([
                format!("--port={DRIVER_PORT}"),
                format!("--log-path={}", dir.join("chromedriver.log").display()),
            ])
            .spawn(Some(&dir.join("chromedriver.out")))?;
        let port = crate::netns::forward_into(ns.name(), DRIVER_PORT)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(io("a tokio runtime"))?;
        let profile = dir.join("profile");
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1024", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--ignore-certificate-errors-spki-list={spki_base64}"),
                ]
            }
        });
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!("an object"),
        };
        let start = Instant::now();
        let client = loop {
            let attempt = runtime.block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&format!("http://127.0.0.1:{port}")),
            );
            match attempt {
                Ok(c) => break c,
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(LabError::Setup(format!(
                        "browser: no chromedriver session within 30 s: {e} (logs in {})",
                        dir.display()
                    )))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(300)),
            }
        };
        Ok(LabBrowser { runtime, client: Some(client), shots: dir.to_owned(), taken: 0, _driver: driver })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("open until drop")
    }

    pub fn goto(&self, url: &str) -> Result<(), LabError> {
        self.runtime.block_on(self.client().goto(url)).map_err(setup(url))
    }

    /// The element `css` once it is shown (a page may still be working out which form to show),
    /// waited for up to 20 s.
    async fn element(&self, css: &str) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
        let start = Instant::now();
        loop {
            let e =
                self.client().wait().at_most(Duration::from_secs(20)).for_element(Locator::Css(css)).await?;
            if e.is_displayed().await? || start.elapsed() > Duration::from_secs(20) {
                return Ok(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into the element `css`.
    pub fn fill(&self, css: &str, text: &str) -> Result<(), LabError> {
        self.runtime
            .block_on(async {
                let e = self.element(css).await?;
                e.clear().await?;
                e.send_keys(text).await
            })
            .map_err(setup(css))
    }

    pub fn click(&self, css: &str) -> Result<(), LabError> {
        self.runtime.block_on(async { self.element(css).await?.click().await }).map_err(setup(css))
    }

    /// Presses `keys` one after another as a keyboard does, on whatever has the focus
    /// ([`TAB`], [`ENTER`], [`ESCAPE`] for those keys).
    pub fn press(&self, keys: &str) -> Result<(), LabError> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut keyboard = KeyActions::new("keyboard".into());
        for value in keys.chars() {
            keyboard = keyboard.then(KeyAction::Down { value }).then(KeyAction::Up { value });
        }
        self.runtime.block_on(self.client().perform_actions(keyboard)).map_err(setup("keys"))
    }

    /// Presses Tab until the element with id `id` has the focus, as a keyboard user reaches it;
    /// fails if it is not reached within `most` presses. Returns how many it took.
    pub fn tab_to(&self, id: &str, most: usize) -> Result<usize, LabError> {
        let here = format!("document.activeElement && document.activeElement.id === '{id}'");
        for presses in 0..=most {
            if self.eval(&here)? == Value::Bool(true) {
                return Ok(presses);
            }
            self.press(TAB)?;
        }
        let at = self.eval(
            "document.activeElement && (document.activeElement.id || document.activeElement.tagName)",
        )?;
        Err(LabError::Setup(format!(
            "browser: #{id} not reached in {most} presses of Tab (the focus is on {at})"
        )))
    }

    /// The window's size in CSS pixels: a laptop's, a tablet's.
    pub fn resize(&self, width: u32, height: u32) -> Result<(), LabError> {
        self.runtime.block_on(self.client().set_window_size(width, height)).map_err(setup("window size"))
    }

    /// The value of a JavaScript expression in the page.
    pub fn eval(&self, expression: &str) -> Result<Value, LabError> {
        self.runtime
            .block_on(self.client().execute(&format!("return ({expression});"), vec![]))
            .map_err(setup(expression))
    }

    /// Waits until the expression is `true` in the page; says what the page showed if not.
    pub fn wait_for(&self, what: &str, expression: &str, timeout: Duration) -> Result<(), LabError> {
        let start = Instant::now();
        loop {
            if self.eval(expression).ok() == Some(Value::Bool(true)) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                let text = self.eval("document.body.innerText").unwrap_or_default();
                return Err(LabError::Setup(format!(
                    "browser: waited {timeout:?} for {what} ({expression}); the page shows:\n{}",
                    text.as_str().unwrap_or("")
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A screenshot, kept as `NN-name.png` beside the lab's logs; returns its RGBA pixels.
    /// The page is scrolled to its top first (the dashboard).
    pub fn screenshot(&mut self, name: &str) -> Result<Screenshot, LabError> {
        self.eval("window.scrollTo(0, 0) || true")?;
        let png = self.runtime.block_on(self.client().screenshot()).map_err(setup("screenshot"))?;
        self.taken += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&path, &png).map_err(io(&path))?;
        Screenshot::decode(&png, path)
    }
}

impl Drop for LabBrowser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.runtime.block_on(c.close());
        }
    }
}

/// A screenshot's pixels, to check that what a state must show is drawn.
#[derive(Debug)]
pub struct Screenshot {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    rgba: Vec<u8>,
}

impl Screenshot {
    fn decode(png_bytes: &[u8], path: PathBuf) -> Result<Screenshot, LabError> {
        let bad = |e: String| LabError::Setup(format!("{}: not a PNG: {e}", path.display()));
        let mut decoder = png::Decoder::new(png_bytes);
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| bad(e.to_string()))?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).map_err(|e| bad(e.to_string()))?;
        let channels = info.color_type.samples();
        let rgba = buf[..info.buffer_size()]
            .chunks(channels)
            .flat_map(|p| match channels {
                4 => [p[0], p[1], p[2], p[3]],
                3 => [p[0], p[1], p[2], 255],
                _ => [p[0], p[0], p[0], 255],
            })
            .collect();
        Ok(Screenshot { path, width: info.width, height: info.height, rgba })
    }

    /// How many pixels are within `tolerance` of the colour `rgb` in every channel.
    pub fn count(&self, rgb: [u8; 3], tolerance: u8) -> usize {
        self.rgba.chunks(4).filter(|p| (0..3).all(|i| p[i].abs_diff(rgb[i]) <= tolerance)).count()
    }
}
