using Crm.Service.Infrastructure.KnowledgeBase;

namespace Crm.Service.KnowledgeBase;

/// <summary>The help center's few words, in the language of the page (which is the articles' language, not the console's).</summary>
public sealed record HelpText(string HelpCenter, string Search, string SearchPlaceholder, string Results, string Updated, string Other, string Empty,
    string AllArticles, string Previous, string Next, string SearchUnavailable)
{
    public static readonly IReadOnlyList<(string Code, string Name)> Languages = [("zh-CN", "简体中文"), ("zh-TW", "繁體中文"), ("en", "English")];

    private static readonly HelpText English = new("Help center", "Search", "Search articles", "results", "Updated", "Other articles", "No articles yet.",
        "All {0} articles", "Previous", "Next", "Search is unavailable right now. Please try again in a few minutes, or browse the categories.");
    private static readonly HelpText Simplified = new("帮助中心", "搜索", "搜索文章", "个结果", "更新于", "其他文章", "暂无文章。",
        "全部 {0} 篇文章", "上一页", "下一页", "搜索暂时不可用，请稍后再试，或浏览分类。");
    private static readonly HelpText Traditional = new("說明中心", "搜尋", "搜尋文章", "個結果", "更新於", "其他文章", "尚無文章。",
        "全部 {0} 篇文章", "上一頁", "下一頁", "搜尋暫時無法使用，請稍後再試，或瀏覽分類。");

    public static HelpText For(string language) => language switch { "zh-CN" => Simplified, "zh-TW" => Traditional, _ => English };

    public static string CategoryName(CategoryRecord category, string language) => category.Names.GetValueOrDefault(language) ?? category.Name;

    /// <summary>The first supported language the browser asks for: zh-TW/zh-HK/zh-Hant → zh-TW, other zh → zh-CN, else en.</summary>
    public static string FromAcceptLanguage(string header)
    {
        foreach (var part in header.Split(','))
        {
            var tag = part.Split(';')[0].Trim();
            if (tag.StartsWith("zh", StringComparison.OrdinalIgnoreCase))
                return tag.Contains("TW", StringComparison.OrdinalIgnoreCase) || tag.Contains("HK", StringComparison.OrdinalIgnoreCase) || tag.Contains("Hant", StringComparison.OrdinalIgnoreCase)
                    ? "zh-TW" : "zh-CN";
            if (tag.StartsWith("en", StringComparison.OrdinalIgnoreCase))
                return "en";
        }
        return "en";
    }
}
