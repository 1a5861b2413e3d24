# hostpulse agent on Windows: a scheduled task that starts at boot, hidden, as SYSTEM (which
# CPU temperature sensors need), and restarts if it stops. Run in an elevated PowerShell:
#   powershell -ExecutionPolicy Bypass -File deploy\windows\install-agent.ps1 -EnvFile C:\ProgramData\hostpulse\agent.env
# agent.env holds the lines `hostpulse enrol <host>` printed. Remove: Unregister-ScheduledTask hostpulse-agent
param(
  [string]$InstallDir = (Resolve-Path "$PSScriptRoot\..\..").Path,
  [string]$EnvFile = "$env:ProgramData\hostpulse\agent.env",
  [string]$Node = (Get-Command node.exe -ErrorAction Stop).Source
)
$ErrorActionPreference = 'Stop'
if (-not (Test-Path $EnvFile)) { throw "No settings at $EnvFile: run 'hostpulse enrol <host>' on the broker machine and save its output there." }
$main = Join-Path $InstallDir 'dist\cli\main.js'
if (-not (Test-Path $main)) { throw "No build at $main: run 'npm ci' in $InstallDir first." }

# Only SYSTEM and administrators may read the broker password.
icacls $EnvFile /inheritance:r /grant:r 'SYSTEM:R' 'Administrators:F' | Out-Null

$action = New-ScheduledTaskAction -Execute $Node -Argument "--jitless --no-expose-wasm `"$main`" agent --config `"$EnvFile`"" -WorkingDirectory $InstallDir
$trigger = New-ScheduledTaskTrigger -AtStartup
$principal = New-ScheduledTaskPrincipal -UserId 'SYSTEM' -LogonType ServiceAccount -RunLevel Highest
$settings = New-ScheduledTaskSettingsSet -Hidden -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1) `
  -ExecutionTimeLimit ([TimeSpan]::Zero) -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries -StartWhenAvailable
Register-ScheduledTask -TaskName 'hostpulse-agent' -Action $action -Trigger $trigger -Principal $principal -Settings $settings -Force | Out-Null
Start-ScheduledTask -TaskName 'hostpulse-agent'
Write-Host "hostpulse-agent is running; it starts at every boot. Check: Get-ScheduledTask hostpulse-agent | Get-ScheduledTaskInfo"
