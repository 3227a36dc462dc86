// The embeddable web chat widget. One script tag on any site of the widget's allowed origins:
//   <script src="https://support.example.com/widget.js" data-channel="shop" async></script>
// It draws a launcher and a chat window inside a shadow root (the host page's styles never reach in, ours never leak
// out), reads its look and texts from the widget's public config, and talks to /hubs/visitor over SignalR.
// Everything anyone sends is put on the page with textContent, never as HTML.
import { HubConnectionBuilder, HttpTransportType, LogLevel } from "@microsoft/signalr";
import { css } from "./style.js";
import { textsFor } from "./texts.js";

(function () {
  const script = document.currentScript || document.querySelector("script[data-channel][src*='widget.js']");
  if (!script || !script.dataset.channel) return;
  const widget = script.dataset.channel;
  if (!/^[a-z0-9-]{1,64}$/.test(widget)) return;
  const base = new URL(script.src, location.href).origin;
  const api = `${base}/api/v1/webchat/${widget}`;
  const storageKey = `crm-webchat:${widget}`;
  // The admin view's preview (data-preview: the look as JSON): drawn from that, never contacting the service, keeping
  // nothing in localStorage, the window open and its controls disabled.
  const preview = script.dataset.preview !== undefined ? parsePreview(script.dataset.preview) : null;
  const previewStore = {};
  const language = pickLanguage();
  const t = textsFor(language);

  let config = null;
  let session = null; // { token, conversationId }
  let connection = null;
  let starting = null;
  let lastAgentLine = null;
  let typingTimer = null;
  let lastTypingSent = 0;
  let typingTrailing = null;
  const shown = new Map(); // message id or client id → line element

  // ---- page ---------------------------------------------------------------------------------------------------
  // A custom element, so the page's "div { … }" rules do not match it; the few properties a page's rules could still
  // set on it (display, visibility, …) are pinned inline with !important, which beats any stylesheet.
  const host = document.createElement("crm-webchat");
  host.setAttribute("data-crm-webchat", widget);
  for (const [name, value] of [["display", "block"], ["visibility", "visible"], ["opacity", "1"], ["position", "static"], ["transform", "none"], ["filter", "none"], ["contain", "none"]])
    host.style.setProperty(name, value, "important");
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = css;
  root.appendChild(style);

  const launcher = el("button", "launcher", { type: "button", "aria-label": t.open, "aria-expanded": "false" });
  launcher.appendChild(chatIcon());
  const panel = el("section", "panel", { role: "dialog", "aria-label": t.chat, hidden: "" });
  const header = el("header", "header");
  const title = el("h2", "title", {}, t.chat);
  const close = el("button", "close", { type: "button", "aria-label": t.close }, "×");
  header.append(title, close);
  const log = el("ol", "log", { "aria-live": "polite" });
  const typing = el("div", "typing", { hidden: "" }, t.agentTyping);
  const suggestions = el("ul", "suggestions", { hidden: "", "aria-label": t.suggestions });
  const status = el("div", "status", { role: "status" });
  const form = el("form", "composer");
  const input = el("textarea", "input", { rows: "2", "aria-label": t.placeholder, placeholder: t.placeholder, maxlength: "4000" });
  const send = el("button", "send", { type: "submit" }, t.send);
  const attach = el("label", "attach", { hidden: "", title: t.attach });
  const fileInput = el("input", "file", { type: "file", "aria-label": t.attach });
  attach.append(el("span", "attach-icon", { "aria-hidden": "true" }, "+"), fileInput);
  form.append(attach, input, send);

  // The pre-chat form (name, email; when the widget asks for it) and, when no agent is online, the offline form (name,
  // email, question): an address typed here proves nothing until the visitor enters the code mailed to it.
  const intro = el("form", "intro", { hidden: "", novalidate: "" });
  const introText = el("p", "intro-text");
  const nameInput = el("input", "field name", { type: "text", autocomplete: "name", maxlength: "100", "aria-label": t.name, placeholder: t.name });
  const emailInput = el("input", "field email", { type: "email", autocomplete: "email", maxlength: "254", "aria-label": t.email, placeholder: t.email });
  const questionInput = el("textarea", "field question", { rows: "3", maxlength: "4000", "aria-label": t.question, placeholder: t.question });
  const introStatus = el("div", "form-status", { role: "alert" });
  const introSubmit = el("button", "primary intro-submit", { type: "submit" }, t.start);
  const introSkip = el("button", "link intro-skip", { type: "button" }, t.skip);
  intro.append(introText, nameInput, emailInput, questionInput, introStatus, introSubmit, introSkip);

  // The code entry, after a code was mailed.
  const verify = el("form", "verify", { hidden: "", novalidate: "" });
  const verifyText = el("p", "verify-text");
  const codeInput = el("input", "field code", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", maxlength: "12", "aria-label": t.code, placeholder: t.code });
  const codeSubmit = el("button", "primary code-submit", { type: "submit" }, t.confirm);
  const codeRow = el("div", "row");
  codeRow.append(codeInput, codeSubmit);
  const verifyStatus = el("div", "form-status", { role: "alert" });
  const codeLinks = el("div", "row");
  const codeResend = el("button", "link code-resend", { type: "button" }, t.resend);
  const codeLater = el("button", "link code-later", { type: "button" }, t.later);
  codeLinks.append(codeResend, codeLater);
  verify.append(verifyText, codeRow, verifyStatus, codeLinks);

  // Transcript by email (a proven address only) and a way to prove one later.
  const tools = el("div", "tools");
  const proveButton = el("button", "link prove", { type: "button", hidden: "" }, t.prove);
  const transcriptButton = el("button", "link transcript", { type: "button", hidden: "" }, t.transcript);
  tools.append(proveButton, transcriptButton);

  panel.append(header, log, typing, suggestions, status, tools, intro, verify, form);
  root.append(launcher, panel);

  if (document.body) document.body.appendChild(host);
  else document.addEventListener("DOMContentLoaded", () => document.body.appendChild(host));

  launcher.addEventListener("click", () => (panel.hidden ? openPanel() : closePanel()));
  close.addEventListener("click", closePanel);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    hideSuggestions();
    queueMessage(text);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  input.addEventListener("input", onTyping);
  fileInput.addEventListener("change", () => {
    const file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (file) uploadFile(file);
  });

  intro.addEventListener("submit", (event) => {
    event.preventDefault();
    submitIntro();
  });
  introSkip.addEventListener("click", () => {
    writeStored({ ...readStored(), intro: true });
    render();
    input.focus();
  });
  verify.addEventListener("submit", (event) => {
    event.preventDefault();
    submitCode();
  });
  codeResend.addEventListener("click", () => {
    const pending = readStored().verifying;
    if (pending) startVerification(pending);
  });
  codeLater.addEventListener("click", () => {
    writeStored({ ...readStored(), verifying: null });
    render();
  });
  proveButton.addEventListener("click", () => {
    writeStored({ ...readStored(), proving: true });
    render();
    emailInput.focus();
  });
  transcriptButton.addEventListener("click", sendTranscript);

  loadConfig();

  // ---- config and session -------------------------------------------------------------------------------------
  async function loadConfig() {
    try {
      if (preview) {
        config = preview;
        return showConfig();
      }
      const response = await fetch(`${api}/config`, { credentials: "omit" });
      if (!response.ok) throw new Error(await problemText(response));
      config = await response.json();
    } catch (error) {
      // The widget stays hidden on a site that is not allowed or when the service is down.
      console.warn("Web chat is not available here:", error.message || error);
      host.remove();
      return;
    }
    showConfig();
  }

  function showConfig() {
    const colour = /^#[0-9a-fA-F]{6}$/.test(config.colour) ? config.colour : "#1f6feb";
    host.style.setProperty("--crm-accent", colour);
    panel.classList.toggle("left", config.position === "bottomLeft");
    launcher.classList.toggle("left", config.position === "bottomLeft");
    title.textContent = localized(config.title) || t.chat;
    panel.setAttribute("aria-label", title.textContent);
    if (config.maxMessageChars) input.setAttribute("maxlength", String(config.maxMessageChars));
    if (config.maxUploadBytes > 0) {
      attach.hidden = false;
      fileInput.setAttribute("accept", (config.uploadContentTypes || []).join(","));
    }
    const greeting = localized(config.greeting);
    if (greeting) addLine({ id: "greeting", from: "agent", text: greeting }, { greeting: true });
    setStatus(offlineNotice());
    render();
    if (preview) {
      for (const control of panel.querySelectorAll("input, textarea, button:not(.close)")) control.disabled = true;
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      return;
    }
    // A visitor who left the chat open on the last page gets it back open (and connected, so replies that came
    // meanwhile show up); one with unsent messages is connected to send them. Anyone else connects only when they open
    // the chat: an idle widget on every page view would hold a server connection per tab for nothing.
    const stored = readStored();
    if (stored.token && stored.open) openPanel(false);
    else if (stored.token && (stored.pending || []).length > 0) connect().then(flushPending, () => {});
  }

  async function ensureSession() {
    if (session) return session;
    const stored = readStored();
    const response = await fetch(`${api}/sessions`, {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: stored.token || null }),
    });
    if (!response.ok) throw new Error(await problemText(response));
    const answer = await response.json();
    session = { token: answer.token, conversationId: answer.conversationId };
    // A new visitor (the old token expired or is no longer valid) keeps the messages typed offline: they are the
    // visitor's own and are sent in the new conversation. What the server knew of the old one (a proven address) is
    // gone with it.
    const fresh = answer.newVisitor && stored.token ? { verified: null, verifying: null } : {};
    // Read again after the await: a message queued (or another tab's write) while the request was on its way must
    // not be overwritten by what was read before it.
    writeStored({ ...readStored(), ...fresh, token: answer.token });
    if (answer.newVisitor && stored.token) render();
    return session;
  }

  function connect() {
    if (preview) return Promise.reject(new Error("preview"));
    if (starting) return starting;
    starting = (async () => {
      await ensureSession();
      connection = new HubConnectionBuilder()
        .withUrl(`${base}/hubs/visitor?widget=${encodeURIComponent(widget)}`, {
          accessTokenFactory: () => session.token,
          withCredentials: false,
          transport: HttpTransportType.WebSockets | HttpTransportType.LongPolling,
        })
        .withAutomaticReconnect([0, 2000, 5000, 10000, 30000])
        .configureLogging(LogLevel.None)
        .build();
      connection.on("Message", (line) => {
        addLine(line);
        if (line.from === "agent") {
          showTyping(false);
          markRead();
        }
      });
      connection.on("Typing", (agentTyping) => showTyping(agentTyping));
      connection.on("Read", (upTo) => showRead(upTo));
      connection.onreconnecting(() => setStatus(t.reconnecting));
      connection.onreconnected(() => afterConnect());
      const mine = connection;
      connection.onclose((error) => {
        // A connection this page already replaced says nothing.
        if (connection !== mine) return;
        // A refusal (too many tabs, a full server) says why; anything else is a lost connection.
        setStatus(error && /HubException/.test(String(error.message)) ? friendly(error) : t.disconnected);
        starting = null;
        renewIfExpired(error);
      });
      await connection.start();
      await afterConnect();
    })().catch((error) => {
      starting = null;
      setStatus(friendly(error));
      renewIfExpired(error);
      throw error;
    });
    return starting;
  }

  // "expired:": this page's token was replaced (renewed in another tab) or revoked. Start over from the session
  // endpoint with the stored token (another tab's newer one, or a new visitor), at most every 10 s.
  let lastRenewal = 0;
  function renewIfExpired(error) {
    if (!/expired:/.test(String((error && error.message) || "")) || Date.now() - lastRenewal < 10000) return false;
    lastRenewal = Date.now();
    const old = connection;
    connection = null;
    session = null;
    starting = null;
    if (old) old.stop().catch(() => {});
    setTimeout(() => connect().then(flushPending, () => {}), 500);
    return true;
  }

  // After every (re)connect: the history from the store (replies that came while away), then the unsent messages.
  async function afterConnect() {
    setStatus(offlineNotice());
    await introduce();
    await readHistory();
    await flushPending();
    markRead();
  }

  // The name from the form goes with the visitor's messages (the name of the customer agents see).
  async function introduce() {
    const name = readStored().name;
    if (name && connection && connection.state === "Connected") await connection.invoke("Introduce", session.conversationId, name).catch(() => {});
  }

  async function readHistory() {
    const history = await connection.invoke("History", session.conversationId);
    for (const line of history.lines) addLine(line);
    if (history.agentReadUpTo) showRead(history.agentReadUpTo);
  }

  // A push can be missed while the connection stays up (the session grain moved to another server, a subscription
  // raced a reload): while the chat is open, the history is read again once a minute, so a reply shows up anyway.
  setInterval(() => {
    if (connection && connection.state === "Connected" && !panel.hidden && !document.hidden)
      readHistory().then(markRead, () => {});
  }, 60000);

  // ---- messages -----------------------------------------------------------------------------------------------
  function queueMessage(text) {
    const clientMessageId = newClientId();
    const stored = readStored();
    writeStored({ ...stored, pending: [...(stored.pending || []), { clientMessageId, text }] });
    addLine({ id: null, from: "visitor", text, clientMessageId }, { pending: true });
    connect().then(flushPending, () => {});
  }

  let flushing = false;
  let retryTimer = null;
  // Sends the unacknowledged messages in order; each is dropped from the list only when the hub acknowledged it
  // (stored). A resend after a lost acknowledgement carries the same client id, so it is never stored twice.
  async function flushPending() {
    if (flushing || !connection || connection.state !== "Connected") return;
    flushing = true;
    try {
      for (;;) {
        const pending = readStored().pending || [];
        if (pending.length === 0) break;
        const next = pending[0];
        if (!shown.has(next.clientMessageId)) addLine({ id: null, from: "visitor", text: next.text, clientMessageId: next.clientMessageId }, { pending: true });
        try {
          const ack = await connection.invoke("Send", session.conversationId, next.clientMessageId, next.text);
          const line = shown.get(next.clientMessageId);
          if (line) {
            line.classList.remove("pending");
            line.dataset.id = ack.messageId;
            shown.set(ack.messageId, line);
          }
          const now = readStored();
          writeStored({ ...now, pending: (now.pending || []).filter((p) => p.clientMessageId !== next.clientMessageId) });
          setStatus(offlineNotice());
        } catch (error) {
          const message = friendly(error);
          setStatus(message);
          const wait = /rate-limited/.test(String(error && error.message)) && /(\d+) seconds/.exec(message);
          if (renewIfExpired(error)) {
            // Kept; sent on the new connection.
          } else if (wait) {
            // Kept and sent by itself once the budget allows.
            setTimeout(flushPending, (Number(wait[1]) + 1) * 1000);
          } else if (connection.state === "Connected" && /HubException: invalid:/.test(String(error && error.message))) {
            // Refused for good (too long, empty): drop it and say so.
            const now = readStored();
            writeStored({ ...now, pending: (now.pending || []).filter((p) => p.clientMessageId !== next.clientMessageId) });
            const line = shown.get(next.clientMessageId);
            if (line) line.classList.add("failed");
            continue;
          } else if (connection.state === "Connected") {
            // Refused for now (the channel is off, the conversation is busy): kept, and tried again in a while; a
            // connection error keeps it for the reconnect.
            clearTimeout(retryTimer);
            retryTimer = setTimeout(flushPending, 15000);
          }
          break;
        }
      }
    } finally {
      flushing = false;
    }
  }

  // Files go over HTTP (the hub carries text only), acknowledged like messages once stored.
  async function uploadFile(file) {
    if (file.size > config.maxUploadBytes) {
      setStatus(t.fileTooLarge(Math.max(1, Math.round(config.maxUploadBytes / 1048576))));
      return;
    }
    const clientMessageId = newClientId();
    const line = addLine({ id: null, from: "visitor", text: t.file(file.name), clientMessageId }, { pending: true });
    try {
      await connect();
      const body = new FormData();
      body.append("file", file, file.name);
      body.append("conversationId", session.conversationId);
      body.append("clientMessageId", clientMessageId);
      const response = await fetch(`${api}/uploads`, { method: "POST", credentials: "omit", headers: { Authorization: `Bearer ${session.token}` }, body });
      if (!response.ok) throw new Error(await problemText(response));
      const ack = await response.json();
      line.classList.remove("pending");
      line.dataset.id = ack.messageId;
      shown.set(ack.messageId, line);
    } catch (error) {
      line.classList.add("failed");
      setStatus(String((error && error.message) || error));
    }
  }

  function addLine(line, options = {}) {
    const key = line.id || line.clientMessageId;
    const existing = (line.id && shown.get(line.id)) || (line.clientMessageId && shown.get(line.clientMessageId));
    if (existing) {
      if (line.id) {
        existing.dataset.id = line.id;
        existing.classList.remove("pending");
        shown.set(line.id, existing);
      }
      return existing;
    }
    const item = el("li", `line ${line.from === "visitor" ? "mine" : "theirs"}`);
    if (options.pending) item.classList.add("pending");
    if (options.greeting) item.classList.add("greeting");
    const bubble = el("div", "bubble");
    // Text only: whatever a visitor or an agent wrote is shown as characters, never parsed as HTML.
    bubble.textContent = line.text || "";
    item.appendChild(bubble);
    if (line.attachments) item.appendChild(el("div", "meta", {}, t.attachments(line.attachments)));
    if (line.id) item.dataset.id = line.id;
    item.dataset.from = line.from;
    log.appendChild(item);
    if (line.id) shown.set(line.id, item);
    if (line.clientMessageId) shown.set(line.clientMessageId, item);
    if (key && line.from === "agent" && !options.greeting) lastAgentLine = line.id;
    log.scrollTop = log.scrollHeight;
    return item;
  }

  function showRead(upTo) {
    const target = shown.get(upTo);
    if (!target) return;
    for (const old of log.querySelectorAll(".receipt")) old.remove();
    target.appendChild(el("div", "receipt", {}, t.read));
  }

  function showTyping(on) {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    // The agent's client renews "typing" every few seconds; a missed "stopped" must not leave it on.
    if (on) typingTimer = setTimeout(() => (typing.hidden = true), 8000);
  }

  function markRead() {
    if (!connection || connection.state !== "Connected" || panel.hidden || !lastAgentLine) return;
    connection.invoke("MarkRead", session.conversationId, lastAgentLine).catch(() => {});
  }

  // At most one signal every 1.5 s, and the last draft always goes (so the suggestions match what was typed last).
  function onTyping() {
    clearTimeout(typingTrailing);
    if (!connection || connection.state !== "Connected") return;
    const wait = 1500 - (Date.now() - lastTypingSent);
    if (wait > 0) {
      typingTrailing = setTimeout(onTyping, wait);
      return;
    }
    lastTypingSent = Date.now();
    connection
      .invoke("Typing", session.conversationId, input.value.trim().length > 0, input.value.slice(0, 500), language)
      // null: the server skipped the search (its budget); what is shown stays.
      .then((articles) => articles && showSuggestions(articles), () => {});
  }

  function showSuggestions(articles) {
    suggestions.textContent = "";
    const list = (articles || []).slice(0, 3).map((a) => ({ ...a, href: linkOf(a.url) })).filter((a) => a.href);
    suggestions.hidden = list.length === 0;
    for (const article of list) {
      const item = el("li");
      const link = el("a", "", { href: article.href, target: "_blank", rel: "noopener noreferrer" });
      link.textContent = article.title;
      item.appendChild(link);
      suggestions.appendChild(item);
    }
  }

  // The help center's links are paths on the service ("/help/en/articles/…"); on a shop's page they must point at the
  // service, not the shop, so they resolve against the origin the script came from. Only http(s) links are kept.
  function linkOf(url) {
    try {
      const resolved = new URL(url || "", `${base}/`);
      return resolved.protocol === "https:" || resolved.protocol === "http:" ? resolved.href : null;
    } catch {
      return null;
    }
  }

  function hideSuggestions() {
    suggestions.hidden = true;
    suggestions.textContent = "";
  }

  // ---- forms: pre-chat, offline, code, transcript ---------------------------------------------------------------
  function offlineMode() {
    return !!config && !config.agentsOnline && !!config.emailFeatures;
  }

  function offlineNotice() {
    if (!config || config.agentsOnline) return "";
    if (!config.emailFeatures) return t.offlineNoEmail;
    const stored = readStored();
    if (stored.verified) return t.answerByEmail(stored.verified);
    // The offline form says it itself while it shows; after it, an address not yet proven gets no mail (review W5).
    return stored.intro ? t.answerAfterConfirm : "";
  }

  // Which of the forms shows: the pre-chat or offline form until it was sent (or skipped), the code entry while a code
  // is pending, the transcript button once an address is proven.
  function render() {
    if (!config) return;
    const stored = readStored();
    const offline = offlineMode();
    const wantsIntro = !stored.intro && ((config.preChatForm && !stored.verified) || (offline && !stored.verified));
    const showIntro = wantsIntro || (!!stored.proving && config.emailFeatures && !stored.verified && !stored.verifying);
    intro.hidden = !showIntro;
    introText.textContent = offline && wantsIntro ? t.offline : t.introText;
    questionInput.hidden = !(offline && wantsIntro);
    emailInput.hidden = !config.emailFeatures;
    emailInput.setAttribute("placeholder", offline || stored.proving ? t.email : t.emailOptional);
    emailInput.setAttribute("aria-label", offline || stored.proving ? t.email : t.emailOptional);
    nameInput.hidden = !!stored.proving && !wantsIntro;
    introSubmit.textContent = offline && wantsIntro ? t.leaveMessage : stored.proving && !wantsIntro ? t.confirm : t.start;
    introSkip.hidden = !wantsIntro || offline;
    if (!wantsIntro && stored.proving) introSkip.hidden = true;
    verify.hidden = !stored.verifying;
    // Offline, the visitor expects the answer by mail: it goes only to a proven address (review W5).
    if (stored.verifying) verifyText.textContent = t.codeSent(stored.verifying) + (offline ? " " + t.answerAfterConfirm : "");
    form.hidden = wantsIntro;
    proveButton.hidden = !config.emailFeatures || !!stored.verified || !!stored.verifying || showIntro;
    transcriptButton.hidden = !config.emailFeatures || !stored.verified;
  }

  async function submitIntro() {
    introStatus.textContent = "";
    const stored = readStored();
    const offline = offlineMode() && !stored.intro;
    const name = nameInput.value.trim().slice(0, 100);
    const email = emailInput.hidden ? "" : emailInput.value.trim();
    const question = offline ? questionInput.value.trim() : "";
    if (offline && !question) return (introStatus.textContent = t.needQuestion);
    if ((offline || stored.proving) && !email) return (introStatus.textContent = t.needEmail);
    introSubmit.disabled = true;
    try {
      if (name) {
        writeStored({ ...readStored(), name });
        // Before the first message goes out (it names the visitor's customer).
        await connect().then(introduce, () => {});
      }
      if (question) {
        // The question is the visitor's first message: kept and sent like any other (it opens the ticket).
        questionInput.value = "";
        queueMessage(question);
      }
      if (email && !(await startVerification(email, name))) {
        // The address was refused (malformed, too many codes): the form stays, with the reason. A question already
        // went out as a message; the visitor can still fix the address.
        if (question) writeStored({ ...readStored(), intro: true, proving: true });
        render();
        return;
      }
      writeStored({ ...readStored(), intro: true, proving: false });
      render();
      if (!email) {
        input.focus();
        connect().catch(() => {});
      } else codeInput.focus();
    } finally {
      introSubmit.disabled = false;
    }
  }

  // Mails a code to the address; true when it went out (the code entry shows), else the reason is shown.
  async function startVerification(email, name) {
    const target = verify.hidden ? introStatus : verifyStatus;
    try {
      await connect();
      const started = await connection.invoke("StartVerification", session.conversationId, name || readStored().name || null, email);
      writeStored({ ...readStored(), verifying: started.email });
      verifyStatus.textContent = "";
      render();
      return true;
    } catch (error) {
      target.textContent = friendly(error);
      return false;
    }
  }

  async function submitCode() {
    verifyStatus.textContent = "";
    const code = codeInput.value.trim();
    if (!code) return;
    codeSubmit.disabled = true;
    try {
      await connect();
      const done = await connection.invoke("Verify", session.conversationId, code);
      codeInput.value = "";
      writeStored({ ...readStored(), verified: done.email, verifying: null, proving: false });
      render();
      setStatus(offlineNotice() || t.verified(done.email));
    } catch (error) {
      verifyStatus.textContent = friendly(error);
      // A void code needs a new one: the entry stays, with "send a new code".
    } finally {
      codeSubmit.disabled = false;
    }
  }

  async function sendTranscript() {
    transcriptButton.disabled = true;
    try {
      await connect();
      const sent = await connection.invoke("SendTranscript", session.conversationId);
      setStatus(t.transcriptSent(sent.email));
    } catch (error) {
      // The server no longer knows the address as proven (a new visitor): ask for it again.
      if (/unverified:/.test(String(error && error.message))) {
        writeStored({ ...readStored(), verified: null });
        render();
      }
      setStatus(friendly(error));
    } finally {
      transcriptButton.disabled = false;
    }
  }

  // ---- panel --------------------------------------------------------------------------------------------------
  function openPanel(focus = true) {
    panel.hidden = false;
    writeStored({ ...readStored(), open: true });
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", t.close);
    if (focus) input.focus();
    connect().then(markRead, () => {});
  }

  function closePanel() {
    panel.hidden = true;
    writeStored({ ...readStored(), open: false });
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", t.open);
  }

  function setStatus(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  // ---- helpers ------------------------------------------------------------------------------------------------
  function el(tag, className, attributes = {}, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A speech bubble drawn as SVG (no icon font, no emoji font needed on the visitor's machine).
  function chatIcon() {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "28");
    svg.setAttribute("height", "28");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(ns, "path");
    path.setAttribute("fill", "currentColor");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z");
    svg.appendChild(path);
    return svg;
  }

  function parsePreview(json) {
    try {
      const look = JSON.parse(json) || {};
      return { ...look, agentsOnline: true, emailFeatures: false, maxUploadBytes: 0 };
    } catch {
      return { agentsOnline: true };
    }
  }

  function pickLanguage() {
    const page = (document.documentElement.getAttribute("lang") || "").toLowerCase();
    const browser = (navigator.language || "").toLowerCase();
    return (page || browser).startsWith("zh") ? "zh" : "en";
  }

  function localized(text) {
    if (!text) return "";
    return (language === "zh" ? text.zh || text.en : text.en || text.zh) || "";
  }

  function readStored() {
    if (preview) return { ...previewStore };
    try {
      return JSON.parse(localStorage.getItem(storageKey) || "{}") || {};
    } catch {
      return {};
    }
  }

  function writeStored(value) {
    if (preview) return Object.assign(previewStore, value);
    try {
      localStorage.setItem(storageKey, JSON.stringify(value));
    } catch {
      // Private mode or a full storage: the chat works for this page view only.
    }
  }

  function newClientId() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function problemText(response) {
    try {
      const problem = await response.json();
      return problem.detail || problem.title || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  // The hub's refusals start with a tag ("rate-limited: …"); the visitor sees the sentence after it.
  function friendly(error) {
    const message = String((error && error.message) || error || "");
    const match = /HubException: (?:[a-z-]+: )?(.*)$/s.exec(message);
    if (/rate-limited/.test(message) && match) return match[1];
    if (match) return match[1];
    return t.disconnected;
  }
})();
