// Styles of the widget, inside its shadow root: they cannot reach the host page, and ":host { all: initial }" stops
// the page's inherited styles (fonts, colours, line heights) from reaching in.
export const css = `
:host { all: initial; }
* { box-sizing: border-box; }
.launcher, .panel { position: fixed; z-index: 2147483000; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif; color: #1f2328; }
.launcher { right: 20px; bottom: 20px; width: 56px; height: 56px; border-radius: 50%; border: 0; background: var(--crm-accent, #1f6feb); color: #fff; display: flex; align-items: center; justify-content: center; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.launcher.left, .panel.left { right: auto; left: 20px; }
.launcher:focus-visible, .send:focus-visible, .close:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
.panel { right: 20px; bottom: 88px; width: 360px; max-width: calc(100vw - 40px); height: 520px; max-height: calc(100vh - 110px); display: flex; flex-direction: column; background: #fff; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; }
.panel[hidden] { display: none; }
.header { display: flex; align-items: center; justify-content: space-between; padding: 12px 16px; background: var(--crm-accent, #1f6feb); color: #fff; }
.title { margin: 0; font-size: 16px; font-weight: 600; }
.close { border: 0; background: transparent; color: #fff; font-size: 22px; cursor: pointer; line-height: 1; }
.log { flex: 1; margin: 0; padding: 12px; list-style: none; overflow-y: auto; background: #f6f8fa; }
.line { display: flex; flex-direction: column; margin: 6px 0; }
.line.mine { align-items: flex-end; }
.line.theirs { align-items: flex-start; }
.bubble { max-width: 80%; padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; }
.mine .bubble { background: var(--crm-accent, #1f6feb); color: #fff; border-bottom-right-radius: 4px; }
.theirs .bubble { background: #fff; border: 1px solid #d0d7de; border-bottom-left-radius: 4px; }
.pending .bubble { opacity: .6; }
.failed .bubble { outline: 2px solid #cf222e; }
.receipt, .meta { font-size: 11px; color: #57606a; margin-top: 2px; }
.typing { padding: 4px 14px; font-size: 12px; color: #57606a; }
.suggestions { margin: 0; padding: 6px 14px; list-style: none; border-top: 1px solid #d0d7de; }
.suggestions a { color: var(--crm-accent, #1f6feb); }
.status { padding: 6px 14px; font-size: 12px; color: #9a6700; background: #fff8c5; }
.status:empty { display: none; }
.composer { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #d0d7de; }
.input { flex: 1; resize: none; padding: 8px; border: 1px solid #d0d7de; border-radius: 8px; font: inherit; color: inherit; }
.send { padding: 0 14px; border: 0; border-radius: 8px; background: var(--crm-accent, #1f6feb); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
.attach { display: flex; align-items: center; justify-content: center; width: 36px; border: 1px solid #d0d7de; border-radius: 8px; color: var(--crm-accent, #1f6feb); font-size: 22px; cursor: pointer; position: relative; }
.attach .file { position: absolute; width: 1px; height: 1px; opacity: 0; overflow: hidden; }
.attach:focus-within { outline: 3px solid #ffbf47; outline-offset: 2px; }
.intro, .verify { display: flex; flex-direction: column; gap: 8px; padding: 10px; border-top: 1px solid #d0d7de; }
.intro-text, .verify-text { margin: 0; font-size: 13px; color: #1f2328; overflow-wrap: anywhere; }
.field { padding: 8px; border: 1px solid #d0d7de; border-radius: 8px; font: inherit; color: inherit; background: #fff; }
textarea.field { resize: none; }
.row { display: flex; gap: 8px; }
.row .field { flex: 1; min-width: 0; }
.primary { padding: 8px 14px; border: 0; border-radius: 8px; background: var(--crm-accent, #1f6feb); color: #fff; font: inherit; font-weight: 600; cursor: pointer; }
.link { padding: 0; border: 0; background: transparent; color: var(--crm-accent, #1f6feb); font: inherit; font-size: 12px; text-decoration: underline; cursor: pointer; }
.form-status { font-size: 12px; color: #cf222e; overflow-wrap: anywhere; }
.form-status:empty { display: none; }
.tools { display: flex; gap: 12px; justify-content: flex-end; padding: 4px 12px; }
.tools:not(:has(:not([hidden]))) { display: none; }
.primary:focus-visible, .link:focus-visible, .field:focus-visible { outline: 3px solid #ffbf47; outline-offset: 2px; }
[hidden] { display: none !important; }
`;
