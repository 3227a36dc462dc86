// The agent console's live updates: one SignalR connection per page to /hubs/agents. The server pushes only
// "something changed" (queue sizes, a ticket); the page then asks its own authorized endpoints for the new state,
// so a push never carries more than the page would show. After a reconnect the page re-subscribes and reloads.
import { HubConnectionBuilder, LogLevel } from "@microsoft/signalr";

const liveStatus = document.getElementById("live-status");
const ticketPage = document.querySelector("[data-page='ticket']");
const queuePage = document.querySelector("[data-page='queues']");
const watchedTicket = ticketPage ? Number(ticketPage.dataset.ticket) : null;

const connection = new HubConnectionBuilder()
  .withUrl("/hubs/agents")
  .withAutomaticReconnect([0, 1000, 2000, 5000, 10000, 30000])
  .configureLogging(LogLevel.Warning)
  .build();

function setState(state) {
  if (liveStatus) liveStatus.dataset.state = state;
}

async function refreshCounts() {
  const counts = await connection.invoke("GetCounts");
  for (const badge of document.querySelectorAll(".count[data-queue]")) {
    const key = badge.dataset.queue.charAt(0).toLowerCase() + badge.dataset.queue.slice(1);
    if (key in counts) badge.textContent = String(counts[key]);
  }
}

// The timeline and the links list reload side by side: a failed links fetch (a blip, a reconnect) never keeps the
// timeline from updating, and neither waits for the other's round trip (review CX5).
async function refreshTimeline() {
  if (watchedTicket === null) return;
  await Promise.allSettled([refreshLinks(), refreshTimelineOnly()]);
}

async function refreshTimelineOnly() {
  // Reading an older page: keep the agent's place and say that something new arrived.
  if (ticketPage.dataset.olderPage === "true") {
    const news = document.getElementById("ticket-news");
    if (news) news.hidden = false;
    return;
  }
  const response = await fetch(`/Tickets/${watchedTicket}?handler=Timeline`, { credentials: "same-origin", headers: { "Accept": "text/html" } });
  if (!response.ok) return;
  // Server-rendered and encoded by Razor, from our own origin: the same markup a full page load would show.
  const host = document.getElementById("timeline-host");
  if (host) host.innerHTML = await response.text();
}

// The linked tickets list (outside the timeline): a link made on the other ticket changes this one too.
async function refreshLinks() {
  const response = await fetch(`/Tickets/${watchedTicket}?handler=Links`, { credentials: "same-origin", headers: { "Accept": "text/html" } });
  const list = document.getElementById("links-list");
  if (response.ok && list) list.outerHTML = await response.text();
}

// The collision indicator: who else is on this ticket, and who of them is typing. Names are set as text, never HTML.
function showViewers(number, viewers) {
  if (number !== watchedTicket) return;
  const host = document.getElementById("viewers");
  if (!host) return;
  const me = document.body.dataset.me;
  const others = viewers.filter((v) => v.name !== me);
  host.replaceChildren(...others.map((v) => {
    const item = document.createElement("li");
    item.textContent = v.name;
    if (v.typing) item.dataset.typing = "true";
    return item;
  }));
  host.hidden = others.length === 0;
}

// Assignment and mention notifications: a link to the ticket, built from the number only.
function notify(notification) {
  const host = document.getElementById("notifications");
  if (!host) return;
  const link = document.createElement("a");
  const ticket = Number(notification.ticket);
  // A follow-up on a customer without a ticket links to the customer (the id is checked to be a GUID).
  const customer = typeof notification.customer === "string" && /^[0-9a-f-]{36}$/i.test(notification.customer) ? notification.customer : null;
  link.href = ticket > 0 || !customer ? `/Tickets/${ticket}` : `/Customers/${customer}`;
  link.dataset.kind = notification.kind;
  const kind = String(notification.kind);
  const label = kind === "mentioned" ? host.dataset.mentioned
    : kind.includes("follow-up") ? (kind.endsWith("missed") ? host.dataset.followUpMissed : host.dataset.followUpDue)
    : kind === "assigned" ? host.dataset.assigned : host.dataset.other;
  const who = notification.by && !kind.includes("follow-up") ? ` (${notification.by})` : "";
  link.textContent = label + (ticket > 0 ? ` #${ticket}` : "") + who;
  host.append(link);
}

// Each composer says which it is: only the public reply box shows "An agent is typing…" to a live customer; a note is
// internal (colleagues on the ticket still see who types).
const lastTyping = { reply: 0, note: 0 };
function typing(composer) {
  const now = Date.now();
  if (watchedTicket === null || now - lastTyping[composer] < 3000) return;
  lastTyping[composer] = now;
  connection.invoke("Typing", watchedTicket, composer).catch(() => {});
}

document.getElementById("ReplyText")?.addEventListener("input", () => typing("reply"));
document.getElementById("NoteText")?.addEventListener("input", () => typing("note"));

// Composer: put text into the reply box at the caret (canned responses, knowledge-base links). Text only: a
// textarea's value is never parsed as HTML.
function insertIntoReply(text, replaceFrom) {
  const box = document.getElementById("ReplyText");
  if (!box || typeof text !== "string") return;
  const start = replaceFrom ?? box.selectionStart ?? box.value.length;
  const end = box.selectionEnd ?? box.value.length;
  box.value = box.value.slice(0, start) + text + box.value.slice(end);
  const caret = start + text.length;
  box.focus();
  box.setSelectionRange(caret, caret);
  box.dispatchEvent(new Event("input"));
}

// Canned responses: the page lists titles only; the text, filled for this ticket, is fetched when inserted (a page
// never carries every canned text in full).
const cannedPicker = document.getElementById("canned-picker");
async function cannedText(option) {
  const response = await fetch(`/Tickets/${watchedTicket}?handler=CannedText&id=${encodeURIComponent(option.dataset.id)}`,
    { credentials: "same-origin", headers: { "Accept": "text/plain" } });
  return response.ok ? await response.text() : null;
}
document.getElementById("canned-insert")?.addEventListener("click", async () => {
  const option = cannedPicker?.selectedOptions[0];
  if (option) insertIntoReply(await cannedText(option));
});

// "/shortcut" then Tab in the reply box expands to that canned response (exact shortcut, or the only one it starts).
document.getElementById("ReplyText")?.addEventListener("keydown", async (event) => {
  if (event.key !== "Tab" || event.shiftKey || !cannedPicker) return;
  const box = event.target;
  const before = box.value.slice(0, box.selectionStart);
  const typed = /(?:^|\s)\/([A-Za-z0-9_-]{1,40})$/.exec(before);
  if (!typed) return;
  const options = [...cannedPicker.options];
  const exact = options.filter((o) => o.value === typed[1]);
  const prefixed = options.filter((o) => o.value.startsWith(typed[1]));
  const match = exact.length ? exact[0] : prefixed.length === 1 ? prefixed[0] : null;
  if (!match) return;
  event.preventDefault();
  const from = box.selectionStart - typed[1].length - 1;
  const text = await cannedText(match);
  // Only if the box still ends the same way (the agent may have typed on while the text was fetched).
  if (text !== null && box.value.slice(from, from + typed[1].length + 1) === "/" + typed[1]) {
    box.setSelectionRange(from + typed[1].length + 1, from + typed[1].length + 1);
    insertIntoReply(text, from);
  }
});

// Buttons that carry their text (knowledge-base panel: a link or an article's text).
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-insert]") : null;
  if (button) { event.preventDefault(); insertIntoReply(button.getAttribute("data-insert")); }
});

// Keyboard shortcuts (not while typing in a field): r reply, n note, j next ticket in the queue, / search.
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName))) return;
  const focus = (id) => { const el = document.getElementById(id); if (el) { event.preventDefault(); el.focus(); } };
  if (event.key === "r") focus("ReplyText");
  else if (event.key === "n") focus("NoteText");
  else if (event.key === "/") {
    event.preventDefault();
    const box = document.getElementById("search-box");
    if (box) box.focus(); else window.location.href = "/Search";
  }
  else if (event.key === "j") {
    const next = document.querySelector("[data-next-ticket]");
    if (next) { event.preventDefault(); window.location.href = next.getAttribute("href"); }
  }
});

// "online" only once the page is in its groups: the hub joins them in OnConnectedAsync and WatchTicket, which can
// finish after start() resolves; an invocation is answered only after OnConnectedAsync has run.
async function subscribe() {
  if (watchedTicket !== null) await connection.invoke("WatchTicket", watchedTicket);
  await refreshCounts();
  setState("online");
}

connection.on("QueuesChanged", async () => {
  await refreshCounts();
  const news = document.getElementById("queue-news");
  if (queuePage && news) news.hidden = false;
});

// Changes were lost to this node before it read them (pruned): everything shown may be stale, as after a reconnect.
// Every browser on the node gets this at once, so each waits a random 0-5 s before reading; and each refresh runs on
// its own, so a failed count read (a reconnect in progress) still reloads the open ticket (review LG8).
const resyncSpreadMs = 5000;
connection.on("Resync", async () => {
  await new Promise((resolve) => setTimeout(resolve, Math.random() * resyncSpreadMs));
  const news = document.getElementById("queue-news");
  if (queuePage && news) news.hidden = false;
  await Promise.allSettled([refreshCounts(), refreshTimeline()]);
});

connection.on("TicketChanged", async (number) => {
  if (number === watchedTicket) await refreshTimeline();
});

connection.on("Viewers", showViewers);
connection.on("Notify", notify);
// A notice was stored for me: the bell shows the unread count the server read (capped, as the page renders it).
connection.on("NoticesChanged", (unread) => {
  const count = document.querySelector("#notice-bell .count");
  if (count) count.textContent = Number(unread) > 99 ? "99+" : String(Number(unread));
});
connection.on("PresenceChanged", (presence) => {
  for (const badge of document.querySelectorAll(`[data-presence-of="${CSS.escape(presence.userId)}"]`)) badge.dataset.presence = presence.status;
});

connection.onreconnecting(() => setState("offline"));
connection.onreconnected(async () => {
  await subscribe();
  await refreshTimeline();
});
connection.onclose(() => setState("offline"));

async function start() {
  try {
    await connection.start();
    await subscribe();
  } catch {
    setState("offline");
    setTimeout(start, 5000);
  }
}

start();
