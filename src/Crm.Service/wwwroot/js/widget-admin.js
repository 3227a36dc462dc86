// The web chat widget's admin page: keeps the preview frame in step with the form while the admin types (the frame
// shows the unsaved values; nothing is saved until the form is), and copies the embed snippet.
(function () {
    const form = document.getElementById("widget-form");
    const frame = document.getElementById("widget-preview");
    if (form && frame) {
        let timer = null;
        const refresh = () => {
            const url = new URL(frame.getAttribute("src"), window.location.href);
            for (const field of form.querySelectorAll("[data-preview]")) {
                const name = field.dataset.preview;
                url.searchParams.set(name, field.type === "checkbox" ? String(field.checked) : field.value);
            }
            const next = url.pathname + url.search;
            if (next !== frame.getAttribute("src")) frame.setAttribute("src", next);
        };
        const later = () => {
            clearTimeout(timer);
            timer = setTimeout(refresh, 300);
        };
        form.addEventListener("input", later);
        form.addEventListener("change", later);
    }
    const snippet = document.getElementById("widget-snippet");
    const copy = document.getElementById("widget-snippet-copy");
    if (snippet && copy && navigator.clipboard) {
        copy.hidden = false;
        copy.addEventListener("click", async () => {
            try {
                await navigator.clipboard.writeText(snippet.value);
                copy.textContent = copy.dataset.copied;
            } catch (e) {
                snippet.select();
            }
        });
    }
})();
