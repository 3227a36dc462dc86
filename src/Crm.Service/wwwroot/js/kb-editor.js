// Live preview for the knowledge-base editor: posts the Markdown to the page's Preview handler (anti-forgery token
// included) and shows the sanitized HTML the server renders, the same path a save takes.
(function () {
    const form = document.getElementById("kb-editor");
    const body = document.getElementById("kb-body");
    const preview = document.getElementById("kb-preview");
    if (!form || !body || !preview) return;
    let timer = 0;
    let sequence = 0;
    body.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(async function () {
            const mine = ++sequence;
            const data = new FormData(form);
            const url = new URL(window.location.href);
            url.searchParams.set("handler", "Preview");
            const response = await fetch(url, { method: "POST", body: data, credentials: "same-origin" });
            if (response.ok && mine === sequence) preview.innerHTML = await response.text();
        }, 300);
    });
})();
