//! A headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol: open a page, evaluate JavaScript in it, take a screenshot, and
//! collect every error that reaches the console (console.error, uncaught
//! exceptions, failed loads) and every URL it requests.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long one protocol call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The browser executable: `$KANTOR_CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("KANTOR_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// A headless browser with one page open.
pub struct Browser {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Errors that reached the page's console, in order.
    pub console_errors: Vec<String>,
    /// Every URL the page requested, in order.
    pub requests: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Start Chromium headless with a fresh profile and open a blank page of
    /// `width` × `height` CSS pixels.
    pub fn launch(width: u32, height: u32) -> Result<Browser, String> {
        let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
        let child = Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--autoplay-policy=no-user-gesture-required",
                "--hide-scrollbars",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={width},{height}"))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", chromium_path().display()))?;
        // Chromium writes its port and the browser's endpoint here once it listens.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.to_string(), path.to_string());
                }
            }
            if Instant::now() > deadline {
                return Err("Chromium did not open its DevTools port in 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(CALL_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let (socket, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), stream)
            .map_err(|e| format!("DevTools websocket: {e}"))?;
        let mut browser = Browser {
            child,
            socket,
            session: String::new(),
            next_id: 0,
            console_errors: Vec::new(),
            requests: Vec::new(),
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({ "url": "about:blank" }))?;
        let attached = browser.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        )?;
        browser.session = attached["sessionId"]
            .as_str()
            .ok_or("no session id")?
            .to_string();
        for domain in [
            "Runtime.enable",
            "Log.enable",
            "Page.enable",
            "Network.enable",
        ] {
            browser.call(domain, json!({}))?;
        }
        browser.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )?;
        Ok(browser)
    }

    /// Send a command (to the page once attached) and wait for its result;
    /// events read meanwhile are recorded.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            command["sessionId"] = json!(self.session);
        }
        self.socket
            .send(Message::text(command.to_string()))
            .map_err(|e| format!("{method}: {e}"))?;
        let deadline = Instant::now() + CALL_TIMEOUT;
        while Instant::now() < deadline {
            let message = self.socket.read().map_err(|e| format!("{method}: {e}"))?;
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if value["id"] == json!(id) {
                if let Some(error) = value.get("error") {
                    return Err(format!("{method}: {error}"));
                }
                return Ok(value["result"].clone());
            }
            self.record(&value);
        }
        Err(format!("{method}: no answer in {CALL_TIMEOUT:?}"))
    }

    /// Keep the errors among the events.
    fn record(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.consoleAPICalled")
                if matches!(params["type"].as_str(), Some("error" | "assert")) =>
            {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| a["description"].as_str().map(str::to_string))
                            .unwrap_or_else(|| a.to_string())
                    })
                    .collect();
                self.console_errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let text = details["exception"]["description"]
                    .as_str()
                    .or(details["text"].as_str())
                    .unwrap_or("?");
                self.console_errors.push(format!("exception: {text}"));
            }
            Some("Network.requestWillBeSent") => {
                if let Some(url) = params["request"]["url"].as_str() {
                    self.requests.push(url.to_string());
                }
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                let entry = &params["entry"];
                self.console_errors.push(format!(
                    "log: {} {}",
                    entry["text"].as_str().unwrap_or("?"),
                    entry["url"].as_str().unwrap_or("")
                ));
            }
            _ => {}
        }
    }

    /// Load `url` in the page.
    pub fn navigate(&mut self, url: &str) -> Result<(), String> {
        let result = self.call("Page.navigate", json!({ "url": url }))?;
        match result.get("errorText") {
            Some(error) => Err(format!("{url}: {error}")),
            None => Ok(()),
        }
    }

    /// Evaluate a JavaScript expression in the page (promises awaited) and
    /// return its value as JSON.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        )?;
        if let Some(details) = result.get("exceptionDetails") {
            return Err(format!("{expression}: {details}"));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Evaluate `expression` until it is truthy (returns it) or `timeout` passes.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.eval(expression)?;
            let truthy = !matches!(value, Value::Null | Value::Bool(false))
                && value != json!(0)
                && value != json!("");
            if truthy {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(format!("{expression} still false after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A PNG of the page as it is drawn now.
    pub fn screenshot(&mut self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().ok_or("no screenshot data")?)
            .map_err(|e| e.to_string())
    }

    /// Give the file input matching `selector` these files (as a user picking them would).
    pub fn set_file_input(&mut self, selector: &str, files: &[PathBuf]) -> Result<(), String> {
        let document = self.call("DOM.getDocument", json!({}))?;
        let node = self.call(
            "DOM.querySelector",
            json!({ "nodeId": document["root"]["nodeId"], "selector": selector }),
        )?;
        let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.call(
            "DOM.setFileInputFiles",
            json!({ "nodeId": node["nodeId"], "files": files }),
        )?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session.clear();
        let _ = self.call("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
