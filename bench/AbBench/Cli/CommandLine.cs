using System.Text;

namespace AbBench;

/// <summary>Splitting and quoting of argument strings, as a POSIX shell would for simple cases.</summary>
internal static class CommandLine
{
    /// <summary>Splits on whitespace; single and double quotes group, backslash escapes the next character.</summary>
    public static IReadOnlyList<string> Split(string text)
    {
        var result = new List<string>();
        var current = new StringBuilder();
        var inWord = false;
        char quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0')
            {
                if (c == quote)
                {
                    quote = '\0';
                }
                else if (c == '\\' && quote == '"' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    result.Add(current.ToString());
                    current.Clear();
                    inWord = false;
                }
            }
            else
            {
                inWord = true;
                if (c is '\'' or '"')
                {
                    quote = c;
                }
                else if (c == '\\' && i + 1 < text.Length)
                {
                    current.Append(text[++i]);
                }
                else
                {
                    current.Append(c);
                }
            }
        }
        if (quote != '\0')
        {
            throw new FormatException("unbalanced quote");
        }
        if (inWord)
        {
            result.Add(current.ToString());
        }
        return result;
    }

    /// <summary>Quotes one argument for a POSIX shell, only when it needs it.</summary>
    public static string Quote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c))
            ? arg
            : "'" + arg.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public static string Join(IEnumerable<string> args) => string.Join(' ', args.Select(Quote));
}
