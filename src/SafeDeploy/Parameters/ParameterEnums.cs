namespace SafeDeploy;

// Parameter enums live in the cmdlet assembly, not the engine: the engine loads into a private context only after
// import, but the CLR needs a value type's definition to lay out the cmdlet class that holds it. Map by name.

/// <summary>Where Initialize-StateDirectory puts a tool's state.</summary>
public enum StateScope { User, System }

/// <summary>The level of a Write-StateLog line.</summary>
public enum LogLevel { Debug, Info, Warning, Error }

static class EnumMap
{
    /// <summary>Converts between a cmdlet-side enum and its engine twin of the same member names.</summary>
    public static TTo To<TTo>(this Enum value) where TTo : struct, Enum => Enum.Parse<TTo>(value.ToString());
}

/// <summary>What Invoke-SafeDeploy -Inventory does when the rollout's failure budget is spent.</summary>
public enum FailureAction { RollBack, Stop, Continue }
