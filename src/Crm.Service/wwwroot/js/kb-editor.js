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

// The upload control: each chosen file is posted to the page's Upload handler (anti-forgery token included); the
// Markdown the server answers (an image or a link to the attachment) is inserted where the cursor is.
(function () {
    const form = document.getElementById("kb-editor");
    const body = document.getElementById("kb-body");
    const input = document.getElementById("kb-file");
    const status = document.getElementById("kb-upload-status");
    if (!form || !body || !input || !status) return;
    const token = form.querySelector("input[name='__RequestVerificationToken']");
    input.addEventListener("change", async function () {
        const files = Array.from(input.files || []);
        input.value = "";
        for (const file of files) {
            status.className = "";
            status.textContent = "Uploading " + file.name + "…";
            const data = new FormData();
            data.append("file", file, file.name);
            if (token) data.append("__RequestVerificationToken", token.value);
            const url = new URL(window.location.href);
            url.searchParams.set("handler", "Upload");
            let result;
            let ok = false;
            try {
                const response = await fetch(url, { method: "POST", body: data, credentials: "same-origin" });
                ok = response.ok;
                result = await response.json().catch(function () { return { error: "The upload failed (HTTP " + response.status + ")." }; });
            } catch (e) {
                result = { error: "The upload failed: " + e.message };
            }
            if (!ok) {
                status.className = "error";
                status.textContent = file.name + ": " + (result.error || "the upload failed.");
                continue;
            }
            const start = body.selectionStart ?? body.value.length;
            const end = body.selectionEnd ?? start;
            const before = body.value.slice(0, start);
            const text = (before.length > 0 && !before.endsWith("\n") ? "\n" : "") + result.markdown + "\n";
            body.setRangeText(text, start, end, "end");
            body.dispatchEvent(new Event("input", { bubbles: true }));
            status.textContent = "Inserted " + file.name + ".";
        }
    });
})();
