// Search-index rebuild on the knowledge-base page (admins): while a rebuild runs, polls its progress once a second
// and shows it; the button is enabled again when it has finished.
(function () {
    const status = document.getElementById("reindex-progress");
    const button = document.getElementById("reindex-button");
    if (!status || !button) return;
    async function poll() {
        const url = new URL(window.location.href);
        url.search = "?handler=ReindexProgress";
        url.hash = "";
        try {
            const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
            if (response.ok) {
                const body = await response.json();
                status.textContent = body.text;
                status.dataset.state = body.progress.state;
            }
        } catch (e) {
            // The next poll tries again.
        }
        if (status.dataset.state === "running") setTimeout(poll, 1000);
        else button.disabled = false;
    }
    if (status.dataset.state === "running") setTimeout(poll, 1000);
})();
