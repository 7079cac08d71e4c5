using System.Collections.Concurrent;
using System.Diagnostics;

namespace Inbox.Reliability.Sqlite.Tests;

/// <summary>
/// A child process running tests/Inbox.Reliability.TestHost (<c>dotnet Inbox.Reliability.TestHost.dll ...</c>):
/// started and awaited until it prints READY, stopped by closing its stdin, or killed with SIGKILL.
/// Dispose kills it if it still runs, so no child outlives a failed test.
/// </summary>
public sealed class TestHostProcess : IAsyncDisposable
{
    private const string AssemblyName = "Inbox.Reliability.TestHost";
    private static readonly TimeSpan ExitTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ConcurrentQueue<string> _stderr = new();
    private bool _disposed;

    private TestHostProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data == "READY") _ready.TrySetResult();
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) _stderr.Enqueue(e.Data);
        };
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>What the child wrote to stderr so far (its warnings and errors).</summary>
    public IReadOnlyList<string> Errors => _stderr.ToArray();

    /// <summary>Writes the first 20 lines of <see cref="Errors"/> to a test's output, if there are any.</summary>
    public void WriteErrors(Action<string> writeLine)
    {
        var errors = Errors;
        if (errors.Count == 0) return;
        writeLine($"  child {Id} stderr ({errors.Count} lines{(errors.Count > 20 ? ", first 20" : "")}):");
        foreach (var line in errors.Take(20)) writeLine("    " + line);
    }

    /// <summary>
    /// The TestHost's dll. The test project references the TestHost project, so the SDK copies it next to the test
    /// assembly with its runtimeconfig.json and deps.json (in the default bin/ layout and in the --artifacts-path
    /// layout alike). As a fallback, the TestHost's own output folder: the test's output folder with the project name
    /// swapped (tests/X.Tests/bin/Debug/net10.0 -> tests/X.TestHost/bin/Debug/net10.0; artifacts/bin/X.Tests/debug -> artifacts/bin/X.TestHost/debug).
    /// </summary>
    public static string Locate()
    {
        var here = AppContext.BaseDirectory;
        var testProject = typeof(TestHostProcess).Assembly.GetName().Name!;
        var candidates = new List<string> { here };
        var segments = here.Split(Path.DirectorySeparatorChar);
        for (var i = segments.Length - 1; i >= 0; i--)
        {
            if (segments[i] != testProject) continue;
            var swapped = (string[])segments.Clone();
            swapped[i] = AssemblyName;
            candidates.Add(string.Join(Path.DirectorySeparatorChar, swapped));
        }

        foreach (var folder in candidates)
        {
            var dll = Path.Combine(folder, AssemblyName + ".dll");
            if (File.Exists(dll) && File.Exists(Path.Combine(folder, AssemblyName + ".runtimeconfig.json"))) return dll;
        }

        throw new FileNotFoundException(
            $"{AssemblyName}.dll with its runtimeconfig.json was not found in: {string.Join(", ", candidates)}. " +
            $"Build the test project (it references tests/{AssemblyName}).");
    }

    /// <summary>The dotnet muxer running this test, so the child uses the same SDK/runtime.</summary>
    private static string Dotnet()
    {
        var hostPath = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (!string.IsNullOrEmpty(hostPath) && File.Exists(hostPath)) return hostPath;
        var self = Environment.ProcessPath;
        if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        return "dotnet";
    }

    /// <summary>Starts the child and waits until it prints READY; kills it and throws when it fails to start.</summary>
    public static async Task<TestHostProcess> StartAsync(IEnumerable<string> arguments, TimeSpan? readyTimeout = null)
    {
        var start = new ProcessStartInfo(Dotnet())
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Locate());
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";

        var child = new TestHostProcess(new Process { StartInfo = start, EnableRaisingEvents = true });
        try
        {
            child._process.Start();
            child._process.BeginOutputReadLine();
            child._process.BeginErrorReadLine();
            var exited = child._process.WaitForExitAsync();
            Task first;
            try
            {
                first = await Task.WhenAny(child._ready.Task, exited).WaitAsync(readyTimeout ?? TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException)
            {
                throw new TimeoutException($"The test host did not print READY in time. Its stderr:{Environment.NewLine}{string.Join(Environment.NewLine, child.Errors)}");
            }

            if (first != child._ready.Task)
            {
                throw new InvalidOperationException(
                    $"The test host exited with code {child._process.ExitCode} before READY. Its stderr:{Environment.NewLine}{string.Join(Environment.NewLine, child.Errors)}");
            }

            return child;
        }
        catch
        {
            await child.DisposeAsync();
            throw;
        }
    }

    /// <summary>Kills the child and its descendants at once (SIGKILL on Linux) and waits until it is gone.</summary>
    public async Task KillAsync()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }

        await _process.WaitForExitAsync().WaitAsync(ExitTimeout);
    }

    /// <summary>Stops the child gracefully by closing its stdin; returns its exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        _process.StandardInput.Close();
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout ?? ExitTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException("The test host did not exit after its stdin was closed.");
        }

        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!_process.HasExited) await KillAsync();
        }
        catch (InvalidOperationException)
        {
            // Never started.
        }
        finally
        {
            _process.Dispose();
        }
    }
}
