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
  const response = await fetch(`/Tickets/${watchedTicket}?handler=Timeline`, { credentials: "same-origin", headers: { "Accept": "text/html" } });
  if (!response.ok) return;
  // Server-rendered and encoded by Razor, from our own origin: the same markup a full page load would show.
  const host = document.getElementById("timeline-host");
  if (host) host.innerHTML = await response.text();
}

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
