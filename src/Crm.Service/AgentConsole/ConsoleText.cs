namespace Crm.Service;

/// <summary>Marker of the console's UI strings: Resources/ConsoleText.{culture}.resx. English is the key itself.</summary>
public sealed class ConsoleText;
