# Runs the loaxa playout agent for ever: the scheduled task "loaxa-agent" (see install.ps1)
# starts this at boot. When the agent exits, for whatever reason, it starts again after 5 s;
# the agent's own journal makes a restart safe (an item cut short is resumed or reported).
# Its log is agent.log in this folder; the previous run's is agent.log.1.
# Not run by the project's tests (they run on Linux): see install.ps1's notes.
$ErrorActionPreference = "Continue"
$AgentHome = $PSScriptRoot
$Exe = Join-Path $AgentHome "venv\Scripts\loaxa-agent.exe"
$Config = Join-Path $AgentHome "agent.toml"
$Log = Join-Path $AgentHome "agent.log"
$env:PYTHONUNBUFFERED = "1"
while ($true) {
    if (Test-Path $Log) { Move-Item -Force $Log "$Log.1" }
    try {
        $p = Start-Process -FilePath $Exe -ArgumentList @("--config", "`"$Config`"") `
            -NoNewWindow -Wait -PassThru -RedirectStandardError $Log -RedirectStandardOutput "$Log.out"
        $code = $p.ExitCode
    } catch {
        $code = "not started: $_"
    }
    Add-Content -Path $Log -Value "$(Get-Date -Format o) loaxa-agent exited ($code); again in 5 s" `
        -ErrorAction SilentlyContinue
    Start-Sleep -Seconds 5
}
