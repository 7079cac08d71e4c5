namespace Inbox.Reliability.Events;

/// <summary>
/// Thrown by <see cref="IWebhookProvider.Parse"/> when a body cannot be understood. The message says what is wrong
/// (and where, as a path such as <c>entry[0].changes[1].value.messages[3]</c>) but never repeats the body's content,
/// so it is safe to log and to store as the raw webhook's error.
/// </summary>
public sealed class WebhookParseException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WebhookParseException()
        : base("The webhook body cannot be understood.")
    {
    }

    /// <summary>Creates the exception with a message that must not contain body content.</summary>
    public WebhookParseException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message that must not contain body content, and its cause.</summary>
    public WebhookParseException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
