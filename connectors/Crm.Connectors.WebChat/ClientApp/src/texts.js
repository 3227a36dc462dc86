// The widget's own words in English and Chinese; the widget follows the page's lang, else the browser's language.
const en = {
  chat: "Chat with us",
  open: "Open chat",
  close: "Close chat",
  placeholder: "Type your message…",
  send: "Send",
  agentTyping: "An agent is typing…",
  read: "Read",
  suggestions: "Articles that may help",
  offline: "No one is online right now. Leave a message and we will answer by email.",
  reconnecting: "Connection lost, reconnecting…",
  disconnected: "Not connected. Your messages will be sent when the connection is back.",
  attachments: (n) => (n === 1 ? "1 attachment" : `${n} attachments`),
  attach: "Send a file",
  file: (name) => `File: ${name}`,
  fileTooLarge: (mb) => `The file is too large: at most ${mb} MB.`,
};

const zh = {
  chat: "在线客服",
  open: "打开聊天",
  close: "关闭聊天",
  placeholder: "请输入消息…",
  send: "发送",
  agentTyping: "客服正在输入…",
  read: "已读",
  suggestions: "可能有帮助的文章",
  offline: "目前没有客服在线。请留言，我们会通过邮件回复您。",
  reconnecting: "连接已断开，正在重新连接…",
  disconnected: "未连接。连接恢复后将发送您的消息。",
  attachments: (n) => `${n} 个附件`,
  attach: "发送文件",
  file: (name) => `文件：${name}`,
  fileTooLarge: (mb) => `文件太大：最大 ${mb} MB。`,
};

export function textsFor(language) {
  return language === "zh" ? zh : en;
}
