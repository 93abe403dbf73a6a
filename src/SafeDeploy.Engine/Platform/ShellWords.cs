using System.Text;
using SafeDeploy.Engine.Errors;

namespace SafeDeploy.Engine.Platform;

/// <summary>
/// Splits a command line written by a person ("sudo -V", "sh -c 'exit 3'") into an argument list the way a POSIX shell
/// splits words: whitespace separates, single quotes are literal, double quotes allow \" and \\, backslash escapes.
/// No expansion of any kind happens: the result goes to ExternalCommand as a list, never to a shell.
/// </summary>
internal static class ShellWords
{
    public static IReadOnlyList<string> Split(string commandLine)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < commandLine.Length; i++)
        {
            char c = commandLine[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) { words.Add(current.ToString()); current.Clear(); inWord = false; }
                continue;
            }
            inWord = true;
            if (c == '\'')
            {
                int end = commandLine.IndexOf('\'', i + 1);
                if (end < 0) throw Unterminated(commandLine, "'");
                current.Append(commandLine, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                i++;
                while (true)
                {
                    if (i >= commandLine.Length) throw Unterminated(commandLine, "\"");
                    char d = commandLine[i];
                    if (d == '"') break;
                    if (d == '\\' && i + 1 < commandLine.Length && commandLine[i + 1] is '"' or '\\' or '$' or '`') { current.Append(commandLine[i + 1]); i += 2; continue; }
                    current.Append(d);
                    i++;
                }
            }
            else if (c == '\\' && i + 1 < commandLine.Length) current.Append(commandLine[++i]);
            else current.Append(c);
        }
        if (inWord) words.Add(current.ToString());
        return words;
    }

    static SafeDeployException Unterminated(string commandLine, string quote) =>
        new("InvalidCommandLine", ErrorKind.InvalidArgument, commandLine, $"The command line <{commandLine}> has an unterminated {quote} quote.",
            "Close the quote, or give the command as an argument list.");
}
