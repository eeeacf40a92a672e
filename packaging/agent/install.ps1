<#
.SYNOPSIS
Install (or upgrade) the loaxa playout agent on a Windows playout PC, from this folder only.

.DESCRIPTION
From an administrator PowerShell, in the unzipped bundle's folder:

  powershell -ExecutionPolicy Bypass -File install.ps1 -ServerUrl https://loaxa.example.vn -Token dev_...

What it does, in order:
  1. finds Python 3.11 or newer (the "py" launcher, then python.exe on PATH; or -Python);
     Python itself is NOT in the bundle: install it first from python.org, "for all users";
  2. makes a virtual environment in %ProgramData%\loaxa-agent\venv and installs the agent
     into it with  pip install --no-index --find-links wheels  (this folder only, no internet);
  3. writes %ProgramData%\loaxa-agent\agent.toml from agent.example.toml unless it is there
     already (an upgrade keeps it), with -ServerUrl filled in; the token, when given, goes to
     %ProgramData%\loaxa-agent\agent.token, readable by SYSTEM and Administrators only;
  4. registers the scheduled task "loaxa-agent", started at boot as SYSTEM (or, with
     -AtLogon, when this user logs on, in their session), which runs run-agent.ps1: that
     starts loaxa-agent again 5 s after it exits for any reason, and keeps its output in
     agent.log (the previous run's in agent.log.1). The task itself is restarted by Task
     Scheduler every minute should it fail.
Then:  & "$env:ProgramData\loaxa-agent\venv\Scripts\loaxa-agent.exe" --check

WHAT HAS AND HAS NOT BEEN TRIED (be careful): this script was written for Windows 10/11 and
PowerShell 5.1 but has NOT been run on Windows by the project's tests, which run on Linux
only. What the tests do check: the bundle holds only win_amd64 and pure-Python wheels, and
the same wheels' Linux counterparts install and run with pip --no-index. Not verified: the
task's start at boot, sound from a task running as SYSTEM (session 0; if nothing is heard,
reinstall with -AtLogon on a PC that logs its user on automatically), what "End" in Task
Scheduler does to the running agent (the agent's players die with the agent through a job
object, and the agent's journal recovers from a hard stop, so a hard end loses no record).
Try it once on a PC before a commune relies on it, and run --check.

.PARAMETER ServerUrl
The loaxa server's URL, written into a new agent.toml.
.PARAMETER Token
The device token (dev_...) from "loaxa device add"; written to agent.token.
.PARAMETER Python
A python.exe (3.11 or newer) to use instead of searching.
.PARAMETER AtLogon
Start the agent when the current user logs on, in their session, instead of at boot as SYSTEM.
.PARAMETER NoTask
Do not register or start the scheduled task (steps 1-3 only).
#>
[CmdletBinding()]
param(
    [string]$ServerUrl = "",
    [string]$Token = "",
    [string]$Python = "",
    [switch]$AtLogon,
    [switch]$NoTask
)
$ErrorActionPreference = "Stop"
$Here = $PSScriptRoot
$AgentHome = Join-Path $env:ProgramData "loaxa-agent"
$Venv = Join-Path $AgentHome "venv"
$Exe = Join-Path $Venv "Scripts\loaxa-agent.exe"
$Config = Join-Path $AgentHome "agent.toml"
$TokenFile = Join-Path $AgentHome "agent.token"
$TaskName = "loaxa-agent"
$Utf8 = New-Object System.Text.UTF8Encoding $false  # no BOM: TOML wants none

function Fail([string]$message) {
    Write-Host "install.ps1: $message" -ForegroundColor Red
    exit 1
}

$identity = [Security.Principal.WindowsIdentity]::GetCurrent()
$admin = [Security.Principal.WindowsBuiltInRole]::Administrator
if (-not (New-Object Security.Principal.WindowsPrincipal $identity).IsInRole($admin)) {
    Fail "run this from an administrator PowerShell (right-click, Run as administrator)"
}

# 1. Python 3.11 or newer, as the full path of its python.exe.
function Find-Python {
    $probe = "import sys; assert sys.version_info >= (3, 11); print(sys.executable)"
    $candidates = @()
    if ($Python) { $candidates += , @($Python) }
    else {
        if (Get-Command py -ErrorAction SilentlyContinue) {
            foreach ($v in "3.13", "3.12", "3.11") { $candidates += , @("py", "-$v") }
        }
        $candidates += , @("python")
    }
    foreach ($c in $candidates) {
        $ErrorActionPreference = "Continue"  # a missing version writes to stderr
        try {
            $exe = @($c)[0]
            $rest = @($c | Select-Object -Skip 1)
            $out = & $exe @rest -c $probe 2>$null
            if ($LASTEXITCODE -eq 0 -and $out) { return ([string]$out).Trim() }
        } catch { }
    }
    return $null
}
$py = Find-Python
if (-not $py) { Fail "Python 3.11 or newer is needed: install it from python.org (for all users), then run this again" }
Write-Host "Python: $py"

# Before pip replaces loaxa-agent.exe, nothing may be running it (an upgrade).
if (Get-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue) {
    Stop-ScheduledTask -TaskName $TaskName -ErrorAction SilentlyContinue
}
Get-Process -ErrorAction SilentlyContinue |
    Where-Object { $_.Path -and $_.Path.StartsWith($Venv, [StringComparison]::OrdinalIgnoreCase) } |
    Stop-Process -Force -ErrorAction SilentlyContinue

# 2. The virtual environment and the agent, from wheels\ only.
New-Item -ItemType Directory -Force -Path $AgentHome | Out-Null
if (-not (Test-Path (Join-Path $Venv "Scripts\python.exe"))) {
    & $py -m venv $Venv
    if ($LASTEXITCODE -ne 0) { Fail "cannot make a virtual environment in $Venv" }
}
$env:PIP_CONFIG_FILE = "NUL"
& (Join-Path $Venv "Scripts\python.exe") -m pip install --quiet --disable-pip-version-check `
    --no-index --find-links (Join-Path $Here "wheels") --upgrade loaxa-agent
if ($LASTEXITCODE -ne 0) { Fail "pip could not install the agent from $Here\wheels (a bundle for another system or Python?)" }
Copy-Item -Force (Join-Path $Here "agent.example.toml") (Join-Path $AgentHome "agent.example.toml")
Copy-Item -Force (Join-Path $Here "run-agent.ps1") (Join-Path $AgentHome "run-agent.ps1")
Write-Host "installed: $(& $Exe --version) in $Venv"

# 3. Configuration and token.
if (-not (Test-Path $Config)) {
    $text = [IO.File]::ReadAllText((Join-Path $Here "agent.example.toml"), $Utf8)
    # The example names C:\ProgramData; this PC's may be elsewhere.
    $text = $text.Replace("C:\ProgramData\loaxa-agent", $AgentHome)
    if ($ServerUrl) { $text = $text -replace '(?m)^server_url = .*$', "server_url = `"$ServerUrl`"" }
    [IO.File]::WriteAllText($Config, $text, $Utf8)
    Write-Host "wrote $Config (edit player_command there: where is ffplay.exe or mpv.exe?)"
} else {
    Write-Host "kept $Config"
    if ($ServerUrl) { Write-Host "  (-ServerUrl ignored: edit server_url there)" }
}
if ($Token) {
    [IO.File]::WriteAllText($TokenFile, "$Token`n", $Utf8)
    # Only SYSTEM (S-1-5-18) and Administrators (S-1-5-32-544): SIDs, as group names are
    # translated on a Vietnamese Windows. With -AtLogon the user who runs the agent reads it.
    $grants = @("*S-1-5-18:(R)", "*S-1-5-32-544:(F)")
    if ($AtLogon) { $grants += "$($identity.Name):(R)" }
    & icacls $TokenFile /inheritance:r /grant:r @grants | Out-Null
    if ($LASTEXITCODE -ne 0) { Fail "cannot restrict access to $TokenFile" }
    Write-Host "wrote $TokenFile"
}

# 4. The scheduled task.
if ($NoTask) {
    Write-Host "no task registered; run:  & `"$Exe`" --config `"$Config`""
} else {
    $runner = Join-Path $AgentHome "run-agent.ps1"
    $action = New-ScheduledTaskAction -Execute "powershell.exe" -WorkingDirectory $AgentHome `
        -Argument "-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -File `"$runner`""
    if ($AtLogon) {
        $trigger = New-ScheduledTaskTrigger -AtLogOn -User $identity.Name
        $principal = New-ScheduledTaskPrincipal -UserId $identity.Name -LogonType Interactive -RunLevel Limited
    } else {
        $trigger = New-ScheduledTaskTrigger -AtStartup
        $principal = New-ScheduledTaskPrincipal -UserId "SYSTEM" -LogonType ServiceAccount -RunLevel Highest
    }
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries `
        -StartWhenAvailable -ExecutionTimeLimit ([TimeSpan]::Zero) -MultipleInstances IgnoreNew `
        -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1)
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Principal $principal `
        -Settings $settings -Force -Description "loaxa playout agent (commune radio loudspeakers)" | Out-Null
    Start-ScheduledTask -TaskName $TaskName
    Write-Host "task $TaskName registered and started; its log: $AgentHome\agent.log"
}
if (-not (Test-Path $TokenFile) -and -not (Select-String -Quiet -Path $Config -Pattern '^device_token')) {
    Write-Host "next: put the device token (dev_...) in $TokenFile, or run this again with -Token"
}
Write-Host "check: & `"$Exe`" --check"
