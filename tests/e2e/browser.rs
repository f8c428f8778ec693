//! A headless Chromium driven over WebDriver: `chromedriver` (Debian's
//! `chromium-driver`) is started on a free loopback port for each
//! [`Browser`] and killed when it is dropped.
//!
//! The WebDriver calls go through `awc`, the HTTP client the app and the
//! integration tests already use: WebDriver is plain JSON over HTTP, and
//! `fantoccini` without its TLS features has no connector to talk through
//! unless `hyper-util` is a dev-dependency too. The surface here is the few
//! commands the tests need.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
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

pub struct Browser {
    driver: Child,
    driver_log: PathBuf,
    port: u16,
    /// `http://127.0.0.1:PORT/session/ID`
    session_url: String,
    session_id: String,
    client: awc::Client,
    closed: bool,
}

/// One element of the current page (a WebDriver element reference).
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session. Panics
    /// (the test fails) when chromedriver or Chromium is not installed.
    pub async fn start() -> Browser {
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
        let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = driver.try_wait() {
                let log = std::fs::read_to_string(&driver_log).unwrap_or_default();
                panic!("chromedriver exited at start ({status}): {log}");
            }
            let ready = match client.get(format!("{base}/status")).send().await {
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
        let capabilities = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
            "binary": CHROMIUM,
        }}}});
        let mut browser = Browser {
            driver,
            driver_log,
            port,
            session_url: String::new(),
            session_id: String::new(),
            client,
            closed: false,
        };
        let session = browser.call("POST", &format!("{base}/session"), Some(capabilities)).await;
        let Some(id) = session["sessionId"].as_str() else {
            panic!("no WebDriver session: {session}");
        };
        browser.session_id = id.to_owned();
        browser.session_url = format!("{base}/session/{id}");
        browser
    }

    /// One WebDriver command; panics with the driver's message on an error.
    async fn call(&self, method: &str, url: &str, body: Option<Value>) -> Value {
        match self.try_call(method, url, body).await {
            Ok(value) => value,
            Err(message) => panic!("WebDriver {method} {url}: {message}"),
        }
    }

    async fn try_call(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value, String> {
        let request = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url),
        };
        let sent = match body {
            Some(body) => request.send_json(&body).await,
            None if method == "POST" => request.send_json(&json!({})).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| e.to_string())?;
        let bytes = response.body().limit(256 * 1024 * 1024).await.map_err(|e| e.to_string())?;
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(500)])))?;
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if !response.status().is_success() || value.get("error").is_some_and(|e| e.is_string()) {
            return Err(format!("{} {}: {}", response.status(), value["error"], value["message"]));
        }
        Ok(value)
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.session_url)
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.at("/url"), Some(json!({"url": url}))).await;
    }

    pub async fn refresh(&self) {
        self.mark_page().await;
        self.call("POST", &self.at("/refresh"), None).await;
        self.wait_for_new_page().await;
    }

    pub async fn current_url(&self) -> url::Url {
        let value = self.call("GET", &self.at("/url"), None).await;
        url::Url::parse(value.as_str().unwrap_or_default()).expect("current URL")
    }

    /// The path of the current page.
    pub async fn path(&self) -> String {
        self.current_url().await.path().to_owned()
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.call("GET", &self.at("/source"), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.call("POST", &self.at("/execute/sync"), Some(json!({"script": script, "args": args}))).await
    }

    async fn try_execute(&self, script: &str) -> Option<Value> {
        self.try_call("POST", &self.at("/execute/sync"), Some(json!({"script": script, "args": []}))).await.ok()
    }

    pub async fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let found = self
            .try_call("POST", &self.at("/element"), Some(json!({"using": "css selector", "value": css})))
            .await
            .ok()?;
        Some(Element { browser: self, id: found[ELEMENT_KEY].as_str()?.to_owned() })
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
        self.call("POST", &self.at("/window/rect"), Some(json!({"width": width, "height": height}))).await;
    }

    async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call("POST", &self.at("/goog/cdp/execute"), Some(json!({"cmd": cmd, "params": params}))).await
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
        self.cdp("Emulation.setDeviceMetricsOverride", metrics(900)).await;
        let height = self.execute("return document.documentElement.scrollHeight", vec![]).await;
        let height = height.as_u64().unwrap_or(900).clamp(600, 8000) as u32;
        self.cdp("Emulation.setDeviceMetricsOverride", metrics(height)).await;
        let png = self.call("GET", &self.at("/screenshot"), None).await;
        self.cdp("Emulation.clearDeviceMetricsOverride", json!({})).await;
        self.set_window_size(1280, 900).await;
        let png = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).expect("PNG");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Ends the session (Chromium quits) and then chromedriver.
    pub async fn close(mut self) {
        let _ = self.try_call("DELETE", &self.session_url.clone(), None).await;
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
    fn at(&self, path: &str) -> String {
        self.browser.at(&format!("/element/{}{path}", self.id))
    }

    pub async fn click(&self) {
        self.browser.call("POST", &self.at("/click"), None).await;
    }

    pub async fn clear(&self) {
        self.browser.call("POST", &self.at("/clear"), None).await;
    }

    /// Types `text` (a `\n` is the Enter key: a new line in a textarea).
    pub async fn send_keys(&self, text: &str) {
        self.browser.call("POST", &self.at("/value"), Some(json!({"text": text}))).await;
    }

    /// The rendered text.
    pub async fn text(&self) -> String {
        self.browser.call("GET", &self.at("/text"), None).await.as_str().unwrap_or_default().to_owned()
    }

    /// A DOM property (`value`, `checked`…) as JSON.
    pub async fn prop(&self, name: &str) -> Value {
        self.browser.call("GET", &self.at(&format!("/property/{name}")), None).await
    }

    pub async fn attr(&self, name: &str) -> Option<String> {
        self.browser.call("GET", &self.at(&format!("/attribute/{name}")), None).await.as_str().map(str::to_owned)
    }

    pub async fn is_selected(&self) -> bool {
        self.browser.call("GET", &self.at("/selected"), None).await == Value::Bool(true)
    }

    /// Runs `script` with this element as `arguments[0]`.
    pub async fn execute(&self, script: &str) -> Value {
        self.browser.execute(script, vec![json!({ELEMENT_KEY: self.id})]).await
    }
}
