using System.Security.Cryptography;
using System.Text;

namespace Inbox.Reliability.Providers.Internal;

/// <summary>Comparisons whose duration does not depend on where (or whether) the inputs differ.</summary>
internal static class ConstantTime
{
    /// <summary>
    /// Compares two secrets. Both are hashed first so that <see cref="CryptographicOperations.FixedTimeEquals"/> always
    /// compares 32 bytes: the comparison then leaks neither the position of a difference nor the secret's length.
    /// </summary>
    public static bool SecretEquals(string provided, string expected)
    {
        Span<byte> a = stackalloc byte[32];
        Span<byte> b = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes(provided), a);
        SHA256.HashData(Encoding.UTF8.GetBytes(expected), b);
        return CryptographicOperations.FixedTimeEquals(a, b);
    }

    /// <summary>Compares a computed MAC with the hex text of the one received (either case), in constant time.</summary>
    public static bool HexEquals(ReadOnlySpan<byte> computed, ReadOnlySpan<char> hex)
    {
        if (hex.Length != computed.Length * 2) return false;
        Span<byte> received = stackalloc byte[computed.Length];
        if (!TryDecodeHex(hex, received)) return false;
        return CryptographicOperations.FixedTimeEquals(computed, received);
    }

    /// <summary>True when <paramref name="hex"/> is exactly <paramref name="bytes"/> digits of hex.</summary>
    public static bool IsHex(ReadOnlySpan<char> hex, int bytes)
    {
        if (hex.Length != bytes * 2) return false;
        foreach (var c in hex)
        {
            if (!char.IsAsciiHexDigit(c)) return false;
        }

        return true;
    }

    private static bool TryDecodeHex(ReadOnlySpan<char> hex, Span<byte> destination)
    {
        for (var i = 0; i < destination.Length; i++)
        {
            var hi = Nibble(hex[2 * i]);
            var lo = Nibble(hex[(2 * i) + 1]);
            if ((hi | lo) < 0) return false;
            destination[i] = (byte)((hi << 4) | lo);
        }

        return true;
    }

    private static int Nibble(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}
