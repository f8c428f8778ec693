//! A headless Chromium driven over WebDriver with `fantoccini`:
//! `chromedriver` (Debian's `chromium-driver`) is started on a free
//! loopback port for each [`Browser`] and killed when it is dropped. The
//! wrapper adds what the tests need on top of fantoccini: waiting for the
//! page a form submit leads to, full-page screenshots at a phone's width
//! (through chromedriver's DevTools command), and failures that show the
//! page's text.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Where `chromedriver` is: `$CHROMEDRIVER`, else on `PATH`, else
/// `/usr/bin/chromedriver`. None when it is not installed.
fn chromedriver_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("chromedriver")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/bin/chromedriver")]).find(|p| p.is_file())
}

/// chromedriver's DevTools passthrough (`POST /session/{id}/goog/cdp/execute`),
/// which fantoccini sends as a custom command.
#[derive(Debug)]
struct DevToolsCommand {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for DevToolsCommand {
    fn endpoint(&self, base_url: &url::Url, session_id: Option<&str>) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(json!({"cmd": self.cmd, "params": self.params}).to_string()))
    }
}

pub struct Browser {
    driver: Child,
    driver_log: PathBuf,
    port: u16,
    session_id: String,
    client: Client,
    closed: bool,
}

/// One element of the current page.
pub struct Element<'a> {
    browser: &'a Browser,
    element: fantoccini::elements::Element,
}

fn fail(what: &str, error: impl std::fmt::Display) -> ! {
    panic!("WebDriver {what}: {error}")
}

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session. Panics
    /// (the test fails) when chromedriver or Chromium is not installed.
    pub async fn start() -> Browser {
        Browser::start_with(&[]).await
    }

    /// As [`Self::start`], with `extra_args` added to Chromium's command
    /// line (e.g. `--ignore-certificate-errors-spki-list=…` to trust a
    /// test's self-signed certificate).
    pub async fn start_with(extra_args: &[&str]) -> Browser {
        let Some(chromedriver) = chromedriver_path() else {
            panic!(
                "chromedriver is not installed: run `make e2e`, which installs Debian's \
                 chromium and chromium-driver (apt-get) before running these tests"
            );
        };
        assert!(
            Path::new(CHROMIUM).is_file(),
            "{CHROMIUM} is not installed: run `make e2e`, which installs Debian's chromium and chromium-driver"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver_log = std::env::temp_dir().join(format!("hajimi-e2e-chromedriver-{port}.log"));
        let log_file = std::fs::File::create(&driver_log).expect("chromedriver log file");
        let mut driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            // Its own process group: dropping the browser ends chromedriver
            // and any Chromium it left behind, and nothing else.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run `make e2e` to install it)", chromedriver.display()));
        let status_client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = driver.try_wait() {
                let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
                panic!("chromedriver exited at start ({status}): {log}");
            }
            let ready = match status_client.get(format!("{base}/status")).send().await {
                Ok(mut response) => response.json::<Value>().await.ok().is_some_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if Instant::now() > deadline {
                let _ = driver.kill();
                let _ = driver.wait();
                panic!("chromedriver did not answer on port {port} within 20 s");
            }
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
        ];
        args.extend_from_slice(extra_args);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".to_owned(), json!({"args": args, "binary": CHROMIUM}));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&base)
            .await
            .unwrap_or_else(|error| fail("session", error));
        let session_id = client.session_id().await.ok().flatten().unwrap_or_default();
        Browser { driver, driver_log, port, session_id, client, closed: false }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|error| fail(url, error));
    }

    pub async fn refresh(&self) {
        self.mark_page().await;
        self.client.refresh().await.unwrap_or_else(|error| fail("refresh", error));
        self.wait_for_new_page().await;
    }

    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.unwrap_or_else(|error| fail("current URL", error))
    }

    /// The path of the current page.
    pub async fn path(&self) -> String {
        self.current_url().await.path().to_owned()
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap_or_else(|error| fail("source", error))
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.unwrap_or_else(|error| fail("execute", error))
    }

    /// As [`Self::execute`] without arguments; None when the script could
    /// not run (no page, an error page, a script error).
    pub async fn try_execute(&self, script: &str) -> Option<Value> {
        self.client.execute(script, vec![]).await.ok()
    }

    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let element = self.client.find(Locator::Css(css)).await.ok()?;
        Some(Element { browser: self, element })
    }

    /// The first element matching `css`; the test fails (with the page's
    /// address and text) when there is none.
    pub async fn find(&self, css: &str) -> Element<'_> {
        match self.try_find(css).await {
            Some(element) => element,
            None => {
                let url = self.current_url().await;
                let text = self.try_execute("return document.body ? document.body.innerText : ''").await;
                let text = text.as_ref().and_then(Value::as_str).unwrap_or("").chars().take(1500).collect::<String>();
                panic!("no element `{css}` on {url}; the page says:\n{text}");
            }
        }
    }

    /// The address of the document in the current browsing context: inside
    /// a frame, the frame's ([`Self::current_url`] is always the top
    /// page's, as WebDriver's current URL is).
    pub async fn document_url(&self) -> url::Url {
        let href = self.execute("return location.href", vec![]).await;
        let href = href.as_str().unwrap_or_default();
        url::Url::parse(href).unwrap_or_else(|error| fail(&format!("document URL `{href}`"), error))
    }

    /// Makes the `index`-th frame of the current document (0: the first
    /// `<iframe>`) the context of every later command, until
    /// [`Self::enter_parent_frame`]. The frame stays the context when it
    /// navigates, so [`Self::submit`] works inside it (its page marker is
    /// set on, and read from, the frame's window).
    pub async fn enter_frame(&self, index: u16) {
        self.client.enter_frame(index).await.unwrap_or_else(|error| fail("enter frame", error));
    }

    /// Goes back from a frame to the document that holds it.
    pub async fn enter_parent_frame(&self) {
        self.client.enter_parent_frame().await.unwrap_or_else(|error| fail("enter parent frame", error));
    }

    /// Clicks the element `css` (a link) and waits for the page it leads to,
    /// in the current browsing context (a frame's, inside one).
    pub async fn follow(&self, css: &str) {
        self.mark_page().await;
        self.find(css).await.click().await;
        self.wait_for_new_page().await;
    }

    /// Marks the current document, so that [`Self::wait_for_new_page`] can
    /// tell when another one has replaced it.
    async fn mark_page(&self) {
        self.execute("window.__e2eOldPage = true;", vec![]).await;
    }

    async fn wait_for_new_page(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let state = self
                .try_execute("return window.__e2eOldPage === true ? 'old' : document.readyState")
                .await
                .and_then(|v| v.as_str().map(str::to_owned));
            if state.as_deref() == Some("complete") {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no new page within 20 s (still on {})", self.current_url().await);
    }

    /// Replaces the value of the field `name` inside `form` by typing `value`.
    pub async fn fill(&self, form: &str, name: &str, value: &str) {
        let field = self.find(&format!("{form} [name=\"{name}\"]")).await;
        field.clear().await;
        field.send_keys(value).await;
    }

    /// Clicks the submit button of `form` (the first one that posts to the
    /// form's own action, not a `formaction` one) and waits for the next page.
    pub async fn submit(&self, form: &str) {
        self.mark_page().await;
        let buttons = ["button[type=submit]", "input[type=submit]", "button:not([type])"]
            .map(|button| format!("{form} {button}:not([formaction])"))
            .join(", ");
        let button = self.find(&buttons).await;
        button.click().await;
        self.wait_for_new_page().await;
    }

    /// Sets the window size (Chromium keeps a minimum window width).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap_or_else(|error| fail("window size", error));
    }

    async fn devtools(&self, cmd: &'static str, params: Value) {
        self.client.issue_cmd(DevToolsCommand { cmd, params }).await.unwrap_or_else(|error| fail(cmd, error));
    }

    /// A PNG of the whole page (not only what fits the window) at `width`
    /// CSS pixels, written to `path`. The window is set to that width; as
    /// Chromium will not make a window narrower than about 500 px, the
    /// viewport is also set through the DevTools protocol (as a phone below
    /// 600 px). The window is 1280 × 900 again afterwards.
    pub async fn screenshot_full(&self, width: u32, path: &Path) {
        self.set_window_size(width, 900).await;
        let metrics =
            |height: u32| json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600});
        self.devtools("Emulation.setDeviceMetricsOverride", metrics(900)).await;
        let height = self.execute("return document.documentElement.scrollHeight", vec![]).await;
        let height = height.as_u64().unwrap_or(900).clamp(600, 8000) as u32;
        self.devtools("Emulation.setDeviceMetricsOverride", metrics(height)).await;
        let png = self.client.screenshot().await.unwrap_or_else(|error| fail("screenshot", error));
        self.devtools("Emulation.clearDeviceMetricsOverride", json!({})).await;
        self.set_window_size(1280, 900).await;
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Ends the session (Chromium quits) and then chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.closed = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test drops the browser without `close()`: end the session
        // over a plain socket (no runtime here), so Chromium quits too.
        if !self.closed && !self.session_id.is_empty() {
            let _ = delete_session_blocking(self.port, &self.session_id);
        }
        // chromedriver and anything left in its process group (a Chromium
        // that did not quit): the group id is chromedriver's pid, still ours
        // since the child is not reaped yet.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_file(&self.driver_log);
    }
}

fn delete_session_blocking(port: u16, session: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Ok(())
}

impl Element<'_> {
    pub async fn click(&self) {
        self.element.click().await.unwrap_or_else(|error| fail("click", error));
    }

    pub async fn clear(&self) {
        self.element.clear().await.unwrap_or_else(|error| fail("clear", error));
    }

    /// Types `text` (a `\n` is the Enter key: a new line in a textarea).
    pub async fn send_keys(&self, text: &str) {
        self.element.send_keys(text).await.unwrap_or_else(|error| fail("send keys", error));
    }

    /// The rendered text.
    pub async fn text(&self) -> String {
        self.element.text().await.unwrap_or_else(|error| fail("text", error))
    }

    /// A DOM property (`value`, `checked`…), as JSON text or null.
    pub async fn prop(&self, name: &str) -> Value {
        match self.element.prop(name).await.unwrap_or_else(|error| fail("property", error)) {
            Some(value) => Value::String(value),
            None => Value::Null,
        }
    }

    pub async fn attr(&self, name: &str) -> Option<String> {
        self.element.attr(name).await.unwrap_or_else(|error| fail("attribute", error))
    }

    pub async fn is_selected(&self) -> bool {
        self.element.is_selected().await.unwrap_or_else(|error| fail("selected", error))
    }

    /// Runs `script` with this element as `arguments[0]`.
    pub async fn execute(&self, script: &str) -> Value {
        let element = serde_json::to_value(&self.element).expect("an element reference");
        self.browser.execute(script, vec![element]).await
    }
}
