namespace Inbox.Reliability.Providers.Internal;

/// <summary>Unix times as providers send them.</summary>
internal static class UnixTime
{
    // Below this a value is seconds (until the year 5138); at or above it, milliseconds (from March 1973).
    private const long MillisecondsThreshold = 100_000_000_000;
    private const long MaxSeconds = 253_402_300_799; // 9999-12-31T23:59:59Z

    /// <summary>
    /// A Unix time in seconds or milliseconds, told apart by magnitude: each provider documents one unit per field
    /// (Meta, Evolution, WAHA payload and W-API seconds; Z-API and the WAHA envelope milliseconds), but Z-API's own
    /// DisconnectedCallback sample is in seconds, so the magnitude decides. Null for missing, non-positive or
    /// out-of-range values.
    /// </summary>
    public static DateTimeOffset? From(long? value)
    {
        if (value is not { } v || v <= 0) return null;
        if (v >= MillisecondsThreshold)
        {
            return v / 1000 <= MaxSeconds ? DateTimeOffset.FromUnixTimeMilliseconds(v) : null;
        }

        return DateTimeOffset.FromUnixTimeSeconds(v);
    }
}
