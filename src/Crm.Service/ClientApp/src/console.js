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

async function refreshTimeline() {
  if (watchedTicket === null) return;
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
  link.href = `/Tickets/${Number(notification.ticket)}`;
  link.dataset.kind = notification.kind;
  const who = notification.by ? ` (${notification.by})` : "";
  link.textContent = (notification.kind === "mentioned" ? host.dataset.mentioned : host.dataset.assigned) + ` #${Number(notification.ticket)}` + who;
  host.append(link);
}

let lastTyping = 0;
function typing() {
  const now = Date.now();
  if (watchedTicket === null || now - lastTyping < 3000) return;
  lastTyping = now;
  connection.invoke("Typing", watchedTicket).catch(() => {});
}

for (const box of document.querySelectorAll("#ReplyText, #NoteText")) box.addEventListener("input", typing);

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

async function subscribe() {
  setState("online");
  if (watchedTicket !== null) await connection.invoke("WatchTicket", watchedTicket);
  await refreshCounts();
}

connection.on("QueuesChanged", async () => {
  await refreshCounts();
  const news = document.getElementById("queue-news");
  if (queuePage && news) news.hidden = false;
});

connection.on("TicketChanged", async (number) => {
  if (number === watchedTicket) await refreshTimeline();
});

connection.on("Viewers", showViewers);
connection.on("Notify", notify);
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
