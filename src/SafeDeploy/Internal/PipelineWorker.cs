using System.Runtime.ExceptionServices;

namespace SafeDeploy.Internal;

/// <summary>
/// Runs engine work on a worker thread of its own while the calling (pipeline) thread runs what the worker posts to it
/// (progress, messages, the PowerShell of script phases), until the worker is done; then returns the worker's result or
/// rethrows its failure.
/// </summary>
/// <remarks>
/// The pipeline thread sleeps in <see cref="Monitor.Wait(object)"/>, never in a spin-then-block wait
/// (<c>BlockingCollection</c>, <c>Task.Wait</c>). Those spin with sched_yield before they block, and on a machine with
/// more runnable threads than cores each yield can hand a whole time slice to another process: eight Get-ModelLocked
/// hosts on two cores spent up to 250 ms spinning between a landing and their return, while the worker that had the
/// answer waited for a core. The worker's outcome is also set before the pipeline thread is told it is done, so the
/// pipeline thread never waits on an unfinished task.
/// </remarks>
static class PipelineWorker
{
    /// <summary>
    /// Runs <paramref name="work"/> on a new thread, handing it a post function; each posted action is passed to
    /// <paramref name="runPosted"/> on this thread, in order. Posting after the work is done returns false.
    /// </summary>
    public static T Run<T>(Func<Func<Action, bool>, T> work, Action<Action> runPosted)
    {
        var mailbox = new Mailbox();
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var worker = new Thread(() =>
        {
            try { result = work(mailbox.Post); }
            catch (Exception e) { failure = ExceptionDispatchInfo.Capture(e); }
            finally { mailbox.Complete(); }
        }) { IsBackground = true, Name = "SafeDeploy engine" };
        worker.Start();
        while (mailbox.Take() is { } posted) runPosted(posted);
        failure?.Throw();
        return result;
    }

    /// <summary>A queue with one consumer that blocks without spinning; its lock also orders the worker's result before Take's null.</summary>
    sealed class Mailbox
    {
        readonly Queue<Action> items = new();
        bool completed;

        public bool Post(Action action)
        {
            lock (items)
            {
                if (completed) return false;
                items.Enqueue(action);
                Monitor.Pulse(items);
                return true;
            }
        }

        public void Complete()
        {
            lock (items)
            {
                completed = true;
                Monitor.Pulse(items);
            }
        }

        /// <summary>The next posted action, or null once the work is done and everything posted was taken.</summary>
        public Action? Take()
        {
            lock (items)
            {
                while (items.Count == 0 && !completed) Monitor.Wait(items);
                return items.Count > 0 ? items.Dequeue() : null;
            }
        }
    }
}
